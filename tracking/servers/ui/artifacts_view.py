"""Read a run's artifacts for the browser: listings, previews and downloads, never outside the
run's artifact root.

Paths from the browser go through the same validation as every artifact write
(`tracking.artifacts.artifact_subpath`: no `..`, no absolute paths, no drive letters, no
backslashes, no percent-encoded traversal at any depth). On local storage the repository also
keeps the resolved real path inside the root's real path, so a symlink in the artifact folder
cannot lead out.
"""

from __future__ import annotations

import csv
import io
import json
import mimetypes
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tracking.artifacts import ArtifactRepository, artifact_subpath
from tracking.entities import FileInfo
from tracking.errors import InvalidParameterError, NotFoundError

PREVIEW_BYTES = 512 * 1024  # text shown in a preview; the download has everything
CSV_ROWS = 500
CSV_COLUMNS = 100
CHUNK = 256 * 1024

TEXT_EXTENSIONS = {
    ".txt", ".log", ".md", ".rst", ".py", ".ipynb", ".cfg", ".ini", ".toml", ".sh", ".sql",
    ".html", ".htm", ".xml", ".js", ".css", ".r", ".out", ".err", ".conf", ".properties",
    ".jsonl", ".ndjson", ".requirements", ".lock",
}  # fmt: skip
TEXT_NAMES = {"MLmodel", "MLproject", "Dockerfile", "LICENSE", "README", "requirements.txt"}
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".svg": "image/svg+xml",
}


def artifact_kind(path: str) -> str:
    """How a file is previewed: json, yaml, csv, tsv, image, text or binary (a guess first)."""
    name = posixpath.basename(path)
    ext = posixpath.splitext(name)[1].lower()
    if ext == ".json":
        return "json"
    if ext in (".yaml", ".yml"):
        return "yaml"
    if ext == ".csv":
        return "csv"
    if ext == ".tsv":
        return "tsv"
    if ext in IMAGE_TYPES:
        return "image"
    if ext in TEXT_EXTENSIONS or name in TEXT_NAMES:
        return "text"
    return "binary"


def clean_path(path: str | None) -> str:
    """The normalised relative path, or InvalidParameterError for anything leaving the root."""
    return artifact_subpath(path or "")


class RunArtifacts:
    """The artifacts of one run (in `repo`, rooted at the run's artifact folder), read-only."""

    def __init__(self, repo: ArtifactRepository) -> None:
        self.repo = repo

    def list(self, path: str | None) -> list[FileInfo]:
        entries = self.repo.list_artifacts(clean_path(path) or None)
        return sorted(entries, key=lambda e: (not e.is_dir, e.path.lower()))

    def info(self, path: str | None) -> dict[str, Any]:
        """fsspec's info of the entry (type, size); NotFoundError if there is none."""
        return self.repo.info(clean_path(path))

    def is_dir(self, path: str | None) -> bool:
        rel = clean_path(path)
        if not rel:
            return True
        try:
            return self.info(rel).get("type") == "directory"
        except NotFoundError:
            return False

    def read_head(self, path: str, limit: int = PREVIEW_BYTES) -> tuple[bytes, bool]:
        """The first `limit` bytes and whether the file is longer."""
        rel = clean_path(path)
        if not rel:
            raise InvalidParameterError("Name an artifact file to preview")
        with self.repo.open(rel) as f:
            data = f.read(limit + 1)
        return data[:limit], len(data) > limit

    def stream(self, path: str) -> Iterator[bytes]:
        with self.repo.open(clean_path(path)) as f:
            while chunk := f.read(CHUNK):
                yield chunk


def content_type(path: str) -> str:
    ext = posixpath.splitext(path)[1].lower()
    if ext in IMAGE_TYPES:
        return IMAGE_TYPES[ext]
    guessed, _ = mimetypes.guess_type(posixpath.basename(path))
    return guessed or "application/octet-stream"


@dataclass
class Preview:
    path: str
    kind: str  # json, yaml, csv, tsv, image, text, binary, too-large
    size: int | None
    text: str = ""
    truncated: bool = False
    note: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _decode(data: bytes) -> str | None:
    """UTF-8 text (a character cut at the end is tolerated), or None for binary data."""
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 4:
            return data[: e.start].decode("utf-8")
        return None


def build_preview(artifacts: RunArtifacts, path: str) -> Preview:
    rel = clean_path(path)
    info = artifacts.info(rel)
    if info.get("type") == "directory":
        raise InvalidParameterError(f"{rel!r} is a folder: open it in the artifact browser")
    size = info.get("size")
    kind = artifact_kind(rel)
    preview = Preview(rel, kind, size)
    if kind == "image":
        return preview
    data, truncated = artifacts.read_head(rel)
    text = _decode(data)
    if text is None:
        preview.kind = "binary"
        return preview
    if kind == "binary":
        kind = preview.kind = "text"  # unknown extension, but it reads as text
    preview.text, preview.truncated = text, truncated
    if kind == "json" and not truncated:
        try:
            preview.text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError as e:
            preview.note = f"Not valid JSON ({e}); shown as text."
            preview.kind = "text"
    elif kind == "yaml" and not truncated:
        import yaml

        try:
            yaml.safe_load(text)
        except yaml.YAMLError as e:
            preview.note = f"Not valid YAML ({str(e).splitlines()[0]}); shown as text."
    elif kind in ("csv", "tsv"):
        _fill_table(preview, text, "\t" if kind == "tsv" else ",")
    return preview


def _fill_table(preview: Preview, text: str, delimiter: str) -> None:
    if preview.truncated:  # drop the partial last line
        text = text[: text.rfind("\n") + 1] if "\n" in text else ""
    try:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        rows = []
        for row in reader:
            rows.append([cell for cell in row[:CSV_COLUMNS]])
            if len(rows) > CSV_ROWS:
                break
    except csv.Error as e:
        preview.note = f"Could not read as a table ({e}); shown as text."
        preview.kind = "text"
        return
    if not rows:
        return
    preview.header, preview.rows = rows[0], rows[1 : CSV_ROWS + 1]
    more = len(rows) > CSV_ROWS + 1 or preview.truncated
    if more:
        preview.note = f"First {len(preview.rows)} rows shown; download the file for all of it."


def breadcrumbs(path: str) -> list[tuple[str, str]]:
    """[(name, path)] from the root down to `path`."""
    crumbs, parts = [], [p for p in path.split("/") if p]
    for i, part in enumerate(parts):
        crumbs.append((part, "/".join(parts[: i + 1])))
    return crumbs


def parent_dir(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""

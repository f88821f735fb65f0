"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts``) over any fsspec location.

Clients upload, download, list and delete through the server, which alone holds the storage
credentials. Bodies are streamed both ways: an upload goes to the destination chunk by chunk
(a temporary file renamed into place on local disks, a multipart upload on S3), a download is
read chunk by chunk. Run artifact URIs ``mlflow-artifacts:/<exp>/<run>/artifacts`` name paths
under the destination.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import posixpath
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tracking.artifacts import ArtifactRepository, LocalFileWriter, proxy_path, resolve_uri
from tracking.entities import FileInfo
from tracking.errors import InvalidParameterError, NotFoundError, StorageError
from tracking.servers.api.messages import dumps, file_info_json
from tracking.servers.api.security import contained, safe_relative_path

PROXY_SCHEME = "mlflow-artifacts"
CHUNK_SIZE = 1024 * 1024  # bytes per write / read on the destination


def proxied_path(uri: str) -> str:
    """Path under the destination named by a proxy URI (tracking.artifacts.is_proxy_uri:
    ``mlflow-artifacts:/...`` or the proxy's http(s) URL, a root MLflow's server was started
    with)."""
    return safe_relative_path(proxy_path(uri), "artifact URI path")


class _RemoteWriter:
    """An fsspec file opened for writing; only `commit` makes it visible (S3: multipart)."""

    def __init__(self, fs: Any, path: str) -> None:
        self.file = fs.open(path, "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.close()

    def abort(self) -> None:
        discard = getattr(self.file, "discard", None)
        with contextlib.suppress(Exception):
            if discard is not None:
                discard()  # s3fs aborts the multipart upload
        self.file.closed = True  # never flush what was discarded


class ArtifactDestination:
    """Where the proxy keeps artifacts: a local folder or any fsspec URI (s3://...)."""

    def __init__(self, uri: str) -> None:
        self.uri = resolve_uri(uri).rstrip("/")
        self.repo = ArtifactRepository(self.uri)
        self.local_root: str | None = None
        if self.repo.protocol == "file":
            os.makedirs(self.repo.root, exist_ok=True)
            self.local_root = os.path.realpath(self.repo.root)

    def __repr__(self) -> str:
        return f"ArtifactDestination({self.uri!r})"

    def _local(self, rel: str) -> str:
        assert self.local_root is not None
        return contained(self.local_root, rel)

    def _remote(self, rel: str) -> str:
        return f"{self.repo.root.rstrip('/')}/{rel}" if rel else self.repo.root

    def _visible(self, rel: str) -> bool:
        """False for entries that are symlinks leading outside a local destination."""
        if self.local_root is None:
            return True
        try:
            self._local(rel)
        except InvalidParameterError:
            return False
        return True

    def list(self, rel: str) -> list[FileInfo]:
        """Direct children of `rel`, paths relative to the destination root."""
        if self.local_root is not None:
            self._local(rel)
        return [info for info in self.repo.list_artifacts(rel or None) if self._visible(info.path)]

    def delete(self, rel: str) -> None:
        if not rel:
            raise InvalidParameterError("Refusing to delete the whole artifact root")
        if self.local_root is not None:
            self._local(rel)
        self.repo.delete_artifacts(rel)

    def open_writer(self, rel: str) -> LocalFileWriter | _RemoteWriter:
        if not rel:
            raise InvalidParameterError("An upload needs a file path")
        try:
            if self.local_root is not None:
                final = self._local(rel)
                if os.path.isdir(final):
                    raise InvalidParameterError(f"Cannot upload to {rel!r}: it is a directory")
                return LocalFileWriter(final)
            return _RemoteWriter(self.repo.fs, self._remote(rel))
        except OSError as e:
            raise StorageError(f"Could not write artifact {rel!r}: {e.strerror or e}") from e

    def stat(self, rel: str) -> tuple[str, int | None]:
        """(path to read, size) of the file `rel`; NotFoundError / InvalidParameterError."""
        if self.local_root is not None:
            path = self._local(rel)
            if not os.path.exists(path):
                raise NotFoundError(f"Artifact {rel!r} does not exist")
            if os.path.isdir(path):
                raise InvalidParameterError(f"Artifact {rel!r} is a directory; list it instead")
            return path, os.path.getsize(path)
        path = self._remote(rel)
        try:
            info = self.repo.fs.info(path)
        except FileNotFoundError:
            raise NotFoundError(f"Artifact {rel!r} does not exist") from None
        except OSError as e:
            raise StorageError(f"Could not read artifact {rel!r}: {e}") from e
        if info.get("type") == "directory":
            raise InvalidParameterError(f"Artifact {rel!r} is a directory; list it instead")
        return path, info.get("size")

    def chunks(self, path: str) -> Iterator[bytes]:
        """The bytes of a remote file, chunk by chunk (closed when the response ends)."""
        with self.repo.fs.open(path, "rb") as f:
            while chunk := f.read(CHUNK_SIZE):
                yield chunk


#: Served as text/plain, as MLflow serves them (MLmodel and mlproject have no extension).
_TEXT_EXTENSIONS = frozenset(
    "txt log err cfg conf cnf cf ini properties prop hocon toml yaml yml xml json js py py3 csv "
    "tsv md rst ipynb MLmodel mlproject".split()
)
_TOKEN_CHARACTERS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _header_value(text: str) -> str:
    """`text` as an HTTP header parameter: bare if it is a token, else quoted."""
    if text and set(text) <= _TOKEN_CHARACTERS:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def content_disposition(name: str) -> str:
    """``attachment; filename=<name>`` as MLflow writes it; a name that is not ASCII gets an
    ASCII ``filename`` and the exact one in ``filename*`` (RFC 6266)."""
    if name.isascii():
        return f"attachment; filename={_header_value(name)}"
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or "download"
    exact = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename={_header_value(fallback)}; filename*=UTF-8''{exact}"


def download_headers(rel: str) -> dict[str, str]:
    """Serve artifacts as attachments: never rendered as pages of this origin."""
    return {
        "Content-Disposition": content_disposition(posixpath.basename(rel) or "artifact"),
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "X-Content-Type-Options": "nosniff",
    }


def media_type(rel: str) -> str:
    """MLflow's content type for a download; never one a browser would run (HTML, SVG, ...)."""
    name = posixpath.basename(rel)
    extension = posixpath.splitext(name)[1].lstrip(".") or name
    if extension in _TEXT_EXTENSIONS:
        return "text/plain"
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if (
        guessed.startswith(("text/html", "image/svg"))
        or "javascript" in guessed
        or "xml" in guessed
    ):
        return "application/octet-stream"
    return guessed


def _destination(request: Request) -> ArtifactDestination:
    return request.app.state.trackflow.destination


def build_router() -> APIRouter:
    router = APIRouter()

    @router.get("/artifacts")
    async def list_artifacts(request: Request) -> Response:
        rel = safe_relative_path(request.query_params.get("path"))
        infos = await run_in_threadpool(_destination(request).list, rel)
        files = [file_info_json(i, posixpath.basename(i.path)) for i in infos]
        return Response(dumps({"files": files}), media_type="application/json")

    @router.get("/artifacts/{artifact_path:path}")
    async def download_artifact(request: Request, artifact_path: str) -> Response:
        rel = safe_relative_path(artifact_path)
        destination = _destination(request)
        path, size = await run_in_threadpool(destination.stat, rel)
        # the exact type in the header: a media_type argument would get "; charset=utf-8"
        headers = {**download_headers(rel), "Content-Type": media_type(rel)}
        if destination.local_root is not None:
            return FileResponse(path, headers=headers)
        if size is not None:
            headers["Content-Length"] = str(size)
        return StreamingResponse(destination.chunks(path), headers=headers)

    @router.put("/artifacts/{artifact_path:path}")
    async def upload_artifact(request: Request, artifact_path: str) -> Response:
        rel = safe_relative_path(artifact_path)
        writer = await run_in_threadpool(_destination(request).open_writer, rel)
        try:
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= CHUNK_SIZE:
                    await run_in_threadpool(writer.write, bytes(pending))
                    pending.clear()
            if pending:
                await run_in_threadpool(writer.write, bytes(pending))
            await run_in_threadpool(writer.commit)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(writer.abort)
            raise
        return Response(b"{}", media_type="application/json")

    @router.delete("/artifacts/{artifact_path:path}")
    async def delete_artifact(request: Request, artifact_path: str) -> Response:
        rel = safe_relative_path(artifact_path)
        await run_in_threadpool(_destination(request).delete, rel)
        return Response(b"{}", media_type="application/json")

    return router

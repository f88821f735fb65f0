"""Artifact storage over fsspec: local paths, ``file://``, ``memory://``, ``s3://``, any protocol.

fsspec and s3fs are imported lazily so that ``import tracking`` stays fast. S3 endpoint and
credentials come the way botocore takes them (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ...); ``MLFLOW_S3_ENDPOINT_URL`` is honoured too.

``mlflow-artifacts:/<path>`` URIs (runs of a tracking server proxying artifacts) and
``http(s)://<server>/api/2.0/mlflow-artifacts/artifacts/<path>`` go through the server's artifact
proxy (tracking.stores.rest.store.ProxyArtifactFileSystem): the server is the current tracking
URI's, or the ``tracking_uri`` storage option's, with the REST store's auth, TLS and retry settings.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from tracking.entities import FileInfo
from tracking.errors import InvalidParameterError, NotFoundError, StorageError, TrackingError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "ArtifactRepository",
    "LocalFileWriter",
    "artifact_subpath",
    "resolve_uri",
    "set_storage_options",
    "write_local_file",
]

_WORKERS = 8  # concurrent file transfers for log_artifacts / download of a directory
_COPY_CHUNK = 1024 * 1024  # bytes per read when copying a local file into the artifact store
_S3_PROTOCOLS = ("s3", "s3a")
_S3_PART_SIZE = 8 * 2**20  # multipart part size; files under 2 parts go in one PUT
_S3_PART_CONCURRENCY = 4  # parts in flight per file (memory: part size x this)
_S3_MAX_PARTS = 10_000
_S3_FSSPEC_RETRIES = 3  # s3fs' own retry loop, on top of botocore's
_S3_DEFAULTS: dict[str, Any] = {
    "config_kwargs": {
        "connect_timeout": 3,
        "read_timeout": 60,
        "retries": {"max_attempts": 2, "mode": "standard"},
    },
    # Other processes write artifacts too: never answer a listing from a stale cache.
    "use_listings_cache": False,
}
_S3_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "MLFLOW_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
_CREDENTIALS_HINT = "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
_ENDPOINT_HINT = "check AWS_ENDPOINT_URL (or MLFLOW_S3_ENDPOINT_URL) and that the server is running"
_PROXY_PATH = "/api/2.0/mlflow-artifacts/artifacts"
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:[/:]")  # "s3://", "file:/", "a::b://"
_DRIVE_RE = re.compile(r"^[A-Za-z]:([/\\]|$)")
_ALLOWED = (
    "artifact paths must be relative paths inside the run's artifact root: forward slashes, "
    "no leading '/', no drive letter, no '..' components, no backslashes, "
    "no URL-encoded traversal"
)

_storage_options: dict[str, dict[str, Any]] = {}
_fs_cache: dict[tuple[str, str], AbstractFileSystem] = {}
_lock = threading.Lock()


def set_storage_options(protocol: str, **options: Any) -> None:
    """Set extra fsspec storage options for `protocol` (replacing earlier ones; none clears).

    Example: ``set_storage_options("s3", client_kwargs={"region_name": "eu-west-1"})``.
    Dict-valued options (``config_kwargs``, ``client_kwargs``) are merged key by key into the
    defaults, so ``config_kwargs={"read_timeout": 300}`` keeps the short connect timeout.
    """
    with _lock:
        if options:
            _storage_options[protocol] = dict(options)
        else:
            _storage_options.pop(protocol, None)


def resolve_uri(path_or_uri: str) -> str:
    """Turn a local path into an absolute ``file:///...`` URI; return URIs unchanged."""
    text = os.fspath(path_or_uri)
    if _SCHEME_RE.match(text):
        return text
    return _path_to_uri(os.path.abspath(os.path.expanduser(text)))


def is_proxy_uri(uri: str) -> bool:
    """An MLflow tracking server's artifact proxy: mlflow-artifacts:/... or its http(s) URL."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme == "mlflow-artifacts":
        return True
    return scheme in ("http", "https") and _PROXY_PATH in urlsplit(uri).path


def proxy_path(uri: str) -> str:
    """The path under the proxy's destination that a proxy URI names (see `is_proxy_uri`):
    `mlflow-artifacts:[//host]/<path>` or `http(s)://host/.../api/2.0/mlflow-artifacts/
    artifacts/<path>`, whatever the host (as MLflow's server reads them)."""
    path = urlsplit(uri).path
    if uri.split(":", 1)[0].lower() != "mlflow-artifacts":
        path = path.split(_PROXY_PATH, 1)[1]
    return path.lstrip("/")


def _path_to_uri(path: str) -> str:
    from pathlib import Path

    return Path(path).as_uri()


def artifact_subpath(path: str | None, what: str = "artifact path") -> str:
    """Validate a user-given relative artifact path; return it normalised ("" = the root)."""
    if path is None:
        return ""
    if not isinstance(path, str):
        raise InvalidParameterError(f"{what} must be a string, got {type(path).__name__}")
    decoded, seen = path, {path}
    while True:  # look through any level of percent-encoding ("%252e%252e" -> "..")
        if (
            "\\" in decoded
            or decoded.startswith("/")
            or _DRIVE_RE.match(decoded)
            or ".." in decoded.split("/")
            or any(ord(ch) < 32 for ch in decoded)
        ):
            raise InvalidParameterError(f"Invalid {what} {path!r}: {_ALLOWED}")
        decoded = unquote(decoded)
        if decoded in seen:
            break
        seen.add(decoded)
    return "/".join(part for part in path.split("/") if part not in ("", "."))


_UPLOAD_NAME = re.compile(r"^\.upload-[0-9a-f]{32}\.tmp$")


def is_upload_in_progress(path: str) -> bool:
    """Whether `path` names a LocalFileWriter's temporary file (listings leave them out)."""
    return _UPLOAD_NAME.match(path.rstrip("/").rsplit("/", 1)[-1]) is not None


class LocalFileWriter:
    """A local file written under a temporary name (`.upload-<hex>.tmp`) in its folder and
    renamed into place by `commit`: a reader, a listing or a crash never shows a partial file
    under the final name."""

    def __init__(self, final: str) -> None:
        self.final = final
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        self.tmp = os.path.join(folder, f".upload-{uuid.uuid4().hex}.tmp")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self.file = os.fdopen(os.open(self.tmp, flags, 0o644), "wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def commit(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def write_local_file(final: str, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to the local file `final` through a LocalFileWriter."""
    writer = LocalFileWriter(final)
    try:
        for chunk in chunks:
            writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            yield chunk


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
    merged = _merge(_S3_DEFAULTS, options)
    has_endpoint = merged.get("endpoint_url") or merged.get("client_kwargs", {}).get("endpoint_url")
    mlflow_endpoint = os.environ.get("MLFLOW_S3_ENDPOINT_URL")
    if mlflow_endpoint and not has_endpoint:
        merged["endpoint_url"] = mlflow_endpoint
    return merged


def _filesystem(protocol: str, uri: str, options: dict[str, Any]) -> AbstractFileSystem:
    """One cached fsspec instance per (protocol, options, relevant environment)."""
    import fsspec

    cls = fsspec.get_filesystem_class(protocol)
    kwargs = {**cls._get_kwargs_from_urls(uri), **options}
    env = {k: os.environ.get(k) for k in _S3_ENV} if protocol in _S3_PROTOCOLS else {}
    fingerprint = json.dumps([kwargs, env], sort_keys=True, default=repr)
    key = (protocol, hashlib.sha256(fingerprint.encode()).hexdigest())
    with _lock:
        fs = _fs_cache.get(key)
        if fs is None:
            fs = cls(**kwargs, skip_instance_cache=True)
            if protocol in _S3_PROTOCOLS:
                fs.retries = _S3_FSSPEC_RETRIES
            _fs_cache[key] = fs
    return fs


def _run_concurrently(jobs: list[Callable[[], None]]) -> None:
    """Run `jobs` on a thread pool; re-raise the first failure after cancelling the rest."""
    if len(jobs) <= 1:
        for job in jobs:
            job()
        return
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


class ArtifactRepository:
    """The artifacts under one root URI (a run's artifact URI), on any fsspec filesystem."""

    def __init__(self, artifact_uri: str, storage_options: dict[str, Any] | None = None) -> None:
        uri = resolve_uri(artifact_uri)
        stripped = uri.rstrip("/")
        self.artifact_uri = uri if stripped.endswith(":") else stripped  # keep "memory://"
        self.protocol = uri.split(":", 1)[0].lower()
        options: dict[str, Any] = {"auto_mkdir": True} if self.protocol == "file" else {}
        options = _merge(options, _storage_options.get(self.protocol, {}))
        options = _merge(options, storage_options or {})
        self._is_s3 = self.protocol in _S3_PROTOCOLS
        if self._is_s3:
            options = _s3_options(options)
        with self._errors("open", self.artifact_uri):
            if is_proxy_uri(uri):  # a tracking server's artifact proxy, over its REST API
                from tracking.stores.rest.store import proxy_filesystem

                self.fs, root = proxy_filesystem(uri, options.get("tracking_uri"))
            elif "::" in uri:  # chained URL, e.g. simplecache::s3://bucket/path
                from fsspec.core import url_to_fs

                self.fs, root = url_to_fs(uri, **options)
            else:
                self.fs = _filesystem(self.protocol, uri, options)
                if self.protocol == "file":  # MLflow writes percent-encoded file URIs
                    root = unquote(urlsplit(uri).path)
                else:
                    root = self.fs._strip_protocol(uri)
        self.root: str = root.rstrip("/") or root

    def __repr__(self) -> str:
        return f"ArtifactRepository({self.artifact_uri!r})"

    # -- paths ------------------------------------------------------------------------------

    def _full(self, rel: str) -> str:
        if not rel:
            return self.root
        full = f"{self.root.rstrip('/')}/{rel}"
        if self.protocol == "file":  # a symlink inside the root must not lead out of it
            root = os.path.realpath(self.root)
            if os.path.commonpath([root, os.path.realpath(full)]) != root:
                raise InvalidParameterError(
                    f"Artifact path {rel!r} leads outside the artifact root {self.artifact_uri}"
                )
        return full

    def _uri(self, rel: str) -> str:
        return f"{self.artifact_uri}/{rel}" if rel else self.artifact_uri

    def _relative(self, name: str) -> str:
        """Path of fsspec entry `name` relative to the root."""
        name = name.rstrip("/")
        prefix = self.root.rstrip("/") + "/"
        if self.root in ("", "/"):
            return name.lstrip("/")
        return name[len(prefix) :] if name.startswith(prefix) else name

    # -- writing ----------------------------------------------------------------------------

    def log_artifact(
        self, local_file: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Store `local_file` at ``<root>/<artifact_path>/<basename>``, streaming it."""
        local = os.fspath(local_file)
        if not os.path.isfile(local):
            raise InvalidParameterError(
                f"log_artifact: local file {local!r} does not exist or is not a file "
                "(use log_artifacts for directories)"
            )
        base = artifact_subpath(artifact_path)
        name = artifact_subpath(os.path.basename(local), "file name")
        self._put(local, f"{base}/{name}" if base else name)

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Store every file under `local_dir` below `artifact_path`, several at a time."""
        local_root = os.fspath(local_dir)
        if not os.path.isdir(local_root):
            raise InvalidParameterError(
                f"log_artifacts: local directory {local_root!r} does not exist "
                "or is not a directory"
            )
        base = artifact_subpath(artifact_path)
        jobs: list[Callable[[], None]] = []
        for dirpath, _dirnames, filenames in os.walk(local_root):
            rel_dir = os.path.relpath(dirpath, local_root).replace(os.sep, "/")
            for filename in sorted(filenames):
                rel = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                rel = artifact_subpath(f"{base}/{rel}" if base else rel)
                src = os.path.join(dirpath, filename)
                jobs.append(functools.partial(self._put, src, rel))
        _run_concurrently(jobs)

    def write_bytes(self, artifact_file: str, data: bytes) -> None:
        """Store `data` as the artifact `artifact_file` (used by log_text, log_dict, ...)."""
        rel = artifact_subpath(artifact_file, "artifact file")
        if not rel or artifact_file.endswith("/"):
            raise InvalidParameterError(
                f"Invalid artifact file {artifact_file!r}: it must name a file, e.g. 'dir/out.json'"
            )
        with self._errors("write", self._uri(rel), writing=True):
            if self.protocol == "file":
                write_local_file(self._full(rel), [bytes(data)])
            else:
                self.fs.pipe_file(self._full(rel), bytes(data))

    def _put(self, local: str, rel: str) -> None:
        if self.protocol == "file":  # object stores show an object only once it is complete
            with self._errors("upload to", self._uri(rel), writing=True):
                write_local_file(self._full(rel), _file_chunks(local))
            return
        kwargs: dict[str, Any] = {}
        if self._is_s3:
            size = os.path.getsize(local)
            kwargs = {
                "chunksize": max(_S3_PART_SIZE, math.ceil(size / _S3_MAX_PARTS)),
                "max_concurrency": _S3_PART_CONCURRENCY,
            }
        with self._errors("upload to", self._uri(rel), writing=True):
            self.fs.put_file(local, self._full(rel), **kwargs)

    # -- reading ----------------------------------------------------------------------------

    def info(self, artifact_path: str | None = None) -> dict[str, Any]:
        """fsspec's description of the entry at `artifact_path` (the root when None): its
        "type" ("file" or "directory"), "size", ...; NotFoundError if there is none."""
        rel = artifact_subpath(artifact_path)
        full = self._full(rel)
        with self._errors("read", self._uri(rel)):
            return dict(self.fs.info(full))

    @contextlib.contextmanager
    def open(self, artifact_file: str) -> Iterator[BinaryIO]:
        """The artifact file open for reading (binary); a missing file raises NotFoundError,
        other failures (opening or reading) StorageError, each naming the artifact."""
        rel = artifact_subpath(artifact_file, "artifact file")
        if not rel:
            raise InvalidParameterError("Name an artifact file to read, e.g. 'dir/out.json'")
        with self._errors("read", self._uri(rel)), self.fs.open(self._full(rel), "rb") as f:
            yield f

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """Direct children of ``<root>/<path>``, paths relative to the root, sorted by path."""
        rel = artifact_subpath(path)
        full = self._full(rel)
        try:
            with self._errors("list", self._uri(rel)):
                entries = self.fs.ls(full, detail=True)
        except NotFoundError:
            return []
        infos = []
        for entry in entries:
            child = self._relative(entry["name"])
            if not child or child == rel or entry["name"].rstrip("/") == full.rstrip("/"):
                continue  # the listed path itself: it is a file (MLflow lists nothing) or a marker
            if is_upload_in_progress(child):
                continue
            is_dir = entry.get("type") == "directory"
            size = None if is_dir else entry.get("size")
            infos.append(FileInfo(path=child, is_dir=is_dir, file_size=size))
        return sorted(infos, key=lambda info: info.path)

    def download_artifacts(self, artifact_path: str = "", dst_path: str | None = None) -> str:
        """Download a file or a whole directory; return its local path (under a tempdir if no
        `dst_path`). Raise NotFoundError when nothing exists at `artifact_path`."""
        rel = artifact_subpath(artifact_path)
        full = self._full(rel)
        try:
            with self._errors("download", self._uri(rel)):
                info = self.fs.info(full)
        except NotFoundError:
            if rel:
                raise
            info = None  # a run without artifacts: download an empty directory
        dst_root = os.path.abspath(dst_path) if dst_path else tempfile.mkdtemp(prefix="artifacts-")
        local_target = os.path.join(dst_root, *rel.split("/")) if rel else dst_root
        if info is not None and info.get("type") != "directory":
            with self._errors("write to", local_target, writing=True):
                os.makedirs(os.path.dirname(local_target), exist_ok=True)
            self._get(full, local_target, rel)
            return local_target
        names: list[str] = []
        if info is not None:
            with self._errors("list", self._uri(rel)):
                names = self.fs.find(full)
        jobs: list[Callable[[], None]] = []
        with self._errors("write to", local_target, writing=True):
            os.makedirs(local_target, exist_ok=True)
        for name in names:
            if name.endswith("/") or is_upload_in_progress(name):
                continue  # a directory marker object, or a file still being written
            child = self._relative(name)
            inner = child[len(rel) + 1 :] if rel else child
            inner = artifact_subpath(inner, "stored artifact name")  # keep downloads inside dst
            if not inner:
                continue
            local = os.path.join(local_target, *inner.split("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            jobs.append(functools.partial(self._get, name, local, child))
        _run_concurrently(jobs)
        return local_target

    def _get(self, remote: str, local: str, rel: str) -> None:
        kwargs: dict[str, Any] = {}
        if self._is_s3:
            kwargs = {"chunksize": _S3_PART_SIZE, "max_concurrency": _S3_PART_CONCURRENCY}
        with self._errors("download", self._uri(rel)):
            self.fs.get_file(remote, local, **kwargs)

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete the file or directory at `artifact_path` (everything when None); no error
        when it does not exist."""
        rel = artifact_subpath(artifact_path)
        full = self._full(rel)
        try:
            with self._errors("delete", self._uri(rel)):
                if self._is_s3:
                    self._delete_s3(full, is_file=bool(rel) and self.fs.isfile(full))
                else:
                    self.fs.rm(full, recursive=True)
        except NotFoundError:
            pass

    def _delete_s3(self, full: str, is_file: bool) -> None:
        """Delete the keys under `full` (never the bucket), then the folder entries that
        filer-backed servers such as SeaweedFS keep listing once a folder is empty."""
        names = [full] if is_file else sorted(set(self.fs.find(full)))
        if not names:
            return
        self.fs.rm(names)
        bucket, _, top = full.partition("/")
        folders: set[str] = set()
        for name in names:
            key = name.partition("/")[2]
            while "/" in key and len(key) > len(top):
                key = key.rsplit("/", 1)[0]
                if len(key) >= len(top):
                    folders.add(key)
        markers = [{"Key": f"{key}/"} for key in sorted(folders, key=len, reverse=True) if key]
        for start in range(0, len(markers), 1000):  # S3's limit per DeleteObjects call
            batch = {"Objects": markers[start : start + 1000], "Quiet": True}
            self.fs.call_s3("delete_objects", Bucket=bucket, Delete=batch)
        self.fs.invalidate_cache(full)

    # -- errors -----------------------------------------------------------------------------

    def _endpoint(self, exc: BaseException | None = None) -> str:
        url = getattr(exc, "kwargs", {}).get("endpoint_url") if exc is not None else None
        if url:  # botocore reports the request URL: keep scheme and host
            parts = urlsplit(url)
            url = f"{parts.scheme}://{parts.netloc}" if parts.netloc else url
        fs = getattr(self, "fs", None)
        url = url or getattr(fs, "endpoint_url", None)
        url = url or (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url")
        url = url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return url or "the default AWS S3 endpoint"

    def _bucket_missing(self) -> bool:
        if not hasattr(self, "root"):
            return False
        bucket = self.root.split("/", 1)[0]
        try:
            self.fs.call_s3("head_bucket", Bucket=bucket)
        except FileNotFoundError:
            return True
        except Exception:  # unknown: let the original error speak
            return False
        return False

    @contextlib.contextmanager
    def _errors(self, action: str, uri: str, writing: bool = False) -> Iterator[None]:
        """Translate fsspec / botocore errors into StorageError / NotFoundError naming `uri`."""
        try:
            yield
        except TrackingError:
            raise
        except FileNotFoundError as exc:
            if self._is_s3 and self._bucket_missing():
                bucket = self.root.split("/", 1)[0]
                raise StorageError(
                    f"Could not {action} {uri}: bucket {bucket!r} does not exist at "
                    f"{self._endpoint()}; create it or check the artifact URI"
                ) from exc
            if writing:
                raise StorageError(f"Could not {action} {uri}: {exc}") from exc
            raise NotFoundError(f"Artifact {uri} does not exist") from exc
        except PermissionError as exc:
            if self._is_s3:
                raise StorageError(
                    f"Could not {action} {uri}: access denied / invalid credentials for {uri} "
                    f"({exc}); {_CREDENTIALS_HINT} and the bucket's permissions"
                ) from exc
            raise StorageError(
                f"Could not {action} {uri}: permission denied ({exc}); check file permissions"
            ) from exc
        except Exception as exc:
            translated = self._translate(exc, action, uri)
            if translated is exc:
                raise
            raise translated from exc

    def _translate(self, exc: Exception, action: str, uri: str) -> Exception:
        boto = sys.modules.get("botocore.exceptions")
        if boto is not None:
            if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
                return StorageError(
                    f"Could not {action} {uri}: no usable AWS credentials ({exc}); set "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
                )
            if isinstance(exc, boto.ProfileNotFound):
                return StorageError(f"Could not {action} {uri}: {exc}; check AWS_PROFILE")
            if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
                return StorageError(
                    f"Could not {action} {uri}: could not connect to {self._endpoint(exc)} "
                    f"({exc}); {_ENDPOINT_HINT}"
                )
            if isinstance(exc, boto.ClientError | boto.BotoCoreError):
                return StorageError(f"Could not {action} {uri}: S3 request failed: {exc}")
        if isinstance(exc, ConnectionError | TimeoutError):
            where = self._endpoint(exc) if self._is_s3 else uri
            return StorageError(f"Could not {action} {uri}: could not connect to {where} ({exc})")
        if isinstance(exc, OSError):
            return StorageError(f"Could not {action} {uri}: {exc}")
        return exc

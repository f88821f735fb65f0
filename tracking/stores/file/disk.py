"""Small file-system helpers for the file store: atomic writes, cached parsing, locking."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import itertools
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import yaml

from tracking.errors import StorageError

T = TypeVar("T")
C = TypeVar("C", bound=type)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DamagedFileError(Exception):
    """A file exists but cannot be parsed."""


def _storage_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` with any OSError turned into a StorageError naming the path and the cause."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError as e:
            root = getattr(self, "root", "")
            path = f"{e.filename} -> {e.filename2}" if e.filename2 else e.filename or root
            raise StorageError(
                f"File store {root}: {method.__name__} failed on {path}: {e.strerror or e}"
            ) from e

    return wrapper


def translating_os_errors(cls: C) -> C:
    """Class decorator for the file stores: every public method (and __init__) raises
    TrackingErrors only, never a bare OSError from a full, read-only or broken disk."""
    for name, member in list(vars(cls).items()):
        if callable(member) and (name == "__init__" or not name.startswith("_")):
            setattr(cls, name, _storage_errors(member))
    return cls


_tmp_names = itertools.count()
#: Temporary files are named `.trackflow~<pid>-<thread>-<n>`: no key may contain "~", so a
#: temp name never hides a key's file, and readers skip it by that prefix.
TEMP_PREFIX = ".trackflow~"


def temp_path(folder: str) -> str:
    """A fresh temporary file name in `folder` (unique in this process and thread)."""
    return f"{folder}/{TEMP_PREFIX}{os.getpid()}-{threading.get_ident()}-{next(_tmp_names)}"


def write_all(fd: int, data: bytes, path: str) -> None:
    """write(2) until all of `data` is written to `path`; a write that cannot go on raises
    OSError naming `path`."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[written:]
    except OSError as e:
        raise _naming(e, path) from None


def _naming(error: OSError, path: str) -> OSError:
    """`error` with `path` as its file name (write(2) errors carry none)."""
    if error.filename is not None:
        return error
    return type(error)(error.errno, error.strerror, path)


def _write_temp(folder: str, data: bytes) -> str:
    """A new temporary file in `folder` holding all of `data` (removed again on failure)."""
    tmp = temp_path(folder)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        write_all(fd, data, tmp)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def atomic_write(path: str, data: str | bytes) -> None:
    """Write `path` through a temp file in the same folder and an atomic rename: readers see
    the old content or all of the new one, never a part."""
    tmp = _write_temp(os.path.dirname(path), data.encode() if isinstance(data, str) else data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _open_creating_dirs(path: str, flags: int) -> int:
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o666)


def write_new(path: str, data: str) -> None:
    """Write a file nobody reads yet (inside a run folder whose meta.yaml is not written)."""
    fd = _open_creating_dirs(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_all(fd, data.encode(), path)
    finally:
        os.close(fd)


def create_exclusive(path: str, data: str) -> str | None:
    """Create `path` with `data` unless it exists; then return the existing content instead.

    The content goes to a temp file first, which is then hard-linked into place (link(2) never
    replaces a file): `path` appears complete or not at all, even if the writer is killed or
    the disk is full. On file systems without hard links, O_EXCL creation is the fallback.
    """
    folder = os.path.dirname(path)
    try:
        tmp = _write_temp(folder, data.encode())
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        tmp = _write_temp(folder, data.encode())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return read_text(path)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        return _create_exclusive_without_links(path, data)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return None


def _create_exclusive_without_links(path: str, data: str) -> str | None:
    """create_exclusive where link(2) is not supported: O_EXCL, then one write."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return read_text(path)
    try:
        write_all(fd, data.encode(), path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(fd)
    return None


# Strings that PyYAML writes plain, or single-quoted when they would read back as another type.
_NO_SPACE_TEXT = re.compile(r"^[A-Za-z0-9_/.][A-Za-z0-9_./:+@-]*$")
_STR_TAG = "tag:yaml.org,2002:str"
_resolver = yaml.resolver.Resolver()


def _yaml_scalar(value: object) -> str | None:
    """PyYAML's text for simple scalars; None when only PyYAML itself can tell."""
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        if value == "":
            return "''"
        if not _NO_SPACE_TEXT.match(value) or value.endswith(":") or value.startswith("..."):
            return None  # ("..." would read as YAML's document end: PyYAML quotes it)
        if _resolver.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG:
            return value
        return f"'{value}'"  # looks like a number, bool, null or date: quoted to stay a str
    if value == []:
        return "[]"
    return None


def dump_yaml(data: dict[str, Any]) -> str:
    """YAML exactly as MLflow writes it (sorted keys, block style); flat dicts of simple values
    are emitted directly, byte-identical to PyYAML, which is 20x slower at it."""
    lines = []
    for key in sorted(data):
        text = _yaml_scalar(data[key])
        if text is None or not _NO_SPACE_TEXT.match(key):
            return yaml.safe_dump(data, default_flow_style=False, allow_unicode=True)
        lines.append(f"{key}: {text}\n")
    return "".join(lines)


def write_yaml(path: str, data: dict[str, Any]) -> None:
    atomic_write(path, dump_yaml(data))


_FLAT_LINE = re.compile(r"^([A-Za-z_][\w.]*): (\S(?:.*\S)?)$")
_DECIMAL = re.compile(r"^-?(?:0|[1-9][0-9]*)$")
_INT_TAG = "tag:yaml.org,2002:int"


def _flat_scalar(raw: str) -> tuple[bool, Any]:
    """(understood, value) of one scalar as PyYAML's safe loader reads it."""
    if raw == "null":
        return True, None
    if raw == "[]":
        return True, []
    if raw.startswith("'"):
        inner = raw[1:-1]
        if len(raw) < 2 or not raw.endswith("'") or "'" in inner.replace("''", ""):
            return False, None
        return True, inner.replace("''", "'")
    if raw[0] in '"{[&*!|>%@`#' or " #" in raw or ": " in raw or raw.endswith(":"):
        return False, None
    tag = _resolver.resolve(yaml.ScalarNode, raw, (True, False))
    if tag == _STR_TAG:
        return True, raw
    if tag == _INT_TAG and _DECIMAL.match(raw):
        return True, int(raw)
    return False, None


def _parse_flat_yaml(text: str) -> dict[str, Any] | None:
    """The flat `key: scalar` files MLflow and we write, 10x faster than PyYAML; None if the
    text uses any other YAML feature (the caller then asks PyYAML)."""
    data: dict[str, Any] = {}
    for line in text.splitlines():
        match = _FLAT_LINE.match(line)
        if match is None:
            return None
        understood, value = _flat_scalar(match.group(2))
        if not understood:
            return None
        data[match.group(1)] = value
    return data or None


def parse_yaml(path: str, text: bytes) -> dict[str, Any]:
    try:
        flat = _parse_flat_yaml(text.decode("utf-8"))
    except UnicodeDecodeError:
        flat = None
    if flat is not None:
        return flat
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise DamagedFileError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise DamagedFileError(f"{path}: expected a mapping, found {type(data).__name__}")
    return data


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def append_line(path: str, line: str) -> None:
    """Append with O_APPEND in one write(2), so concurrent writers never interleave lines.

    A write the disk cuts short (full disk, file size limit) is blanked out (overwritten in
    place with spaces and a newline, which readers skip) before the error is raised: no reader
    ever takes a partial line for a value, and the next line starts on a line of its own.
    """
    data = line.encode()
    fd = _open_creating_dirs(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        for _attempt in range(2):  # the second one raises the disk's error if it is still full
            written = os.write(fd, data)  # nothing written: OSError (ENOSPC, EFBIG, ...)
            if written == len(data):
                return
            end = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: right after this write's bytes
            _blank_out(path, end - written, written)
    except OSError as e:
        raise _naming(e, path) from None
    finally:
        os.close(fd)
    raise OSError(
        errno.ENOSPC, f"No space left: {written} of {len(data)} bytes could be appended", path
    )


def _blank_out(path: str, offset: int, length: int) -> None:
    """Overwrite `length` bytes at `offset` with spaces ending in a newline (no new space is
    needed on the disk); or cut them off if they are still the end of the file."""
    fd = os.open(path, os.O_WRONLY)
    try:
        try:
            os.pwrite(fd, b" " * (length - 1) + b"\n", offset)
        except OSError:
            if os.fstat(fd).st_size != offset + length:
                raise
            os.ftruncate(fd, offset)
    finally:
        os.close(fd)


def walk_files(directory: str, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(key, path) of every file below `directory`; keys use '/' for sub-folders."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX):
            continue
        key = prefix + entry.name
        if entry.is_dir():
            yield from walk_files(entry.path, key + "/")
        else:
            yield key, entry.path


def warn_damaged(message: str) -> None:
    warnings.warn(f"Skipping damaged entry: {message}", stacklevel=3)


class StatCache:
    """Parse results of files, reused while the file's (mtime, size, inode) is unchanged."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[int, int, int], Any]] = {}

    def get(self, path: str, parse: Callable[[str, bytes], T]) -> T:
        """Parsed content of `path`; FileNotFoundError if missing, DamagedFileError if garbage."""
        st = os.stat(path)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self._entries.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        with open(path, "rb") as f:
            text = f.read()
        if not text and parse is parse_yaml:
            raise DamagedFileError(f"{path}: empty file")
        value = parse(path, text)
        self._entries[path] = (stamp, value)
        return value

    def put(self, path: str, value: Any) -> None:
        """Remember what was just written to `path` (saves re-reading and re-parsing it)."""
        st = os.stat(path)
        self._entries[path] = ((st.st_mtime_ns, st.st_size, st.st_ino), value)


class FileLock:
    """An inter-process lock (flock) that is also safe between threads of one process."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._thread_lock:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

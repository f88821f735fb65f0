"""Artifact repository round trips on local disk, file://, memory:// and real S3 servers."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from s3_servers import S3Server, free_port

from tracking.artifacts import ArtifactRepository, resolve_uri, set_storage_options
from tracking.entities import FileInfo
from tracking.errors import InvalidParameterError, NotFoundError, StorageError

BACKENDS = ["local", "file_uri", "memory", "seaweedfs", "moto"]
S3_BACKENDS = ["seaweedfs", "moto"]
MiB = 2**20

SetEnv = Callable[..., S3Server]


def _server(request: pytest.FixtureRequest, backend: str) -> S3Server:
    return request.getfixturevalue(f"{backend}_s3")


@pytest.fixture(params=BACKENDS)
def artifact_uri(request: pytest.FixtureRequest, tmp_path: Path, s3_env: SetEnv) -> Iterator[str]:
    """A fresh run artifact root on each backend."""
    backend = request.param
    if backend == "local":
        yield str(tmp_path / "store" / "0" / "run" / "artifacts")
    elif backend == "file_uri":
        yield (tmp_path / "store with space" / "0" / "run" / "artifacts").as_uri()
    elif backend == "memory":
        import fsspec

        root = f"/{uuid.uuid4().hex}"
        yield f"memory://{root}/0/run/artifacts"
        memory = fsspec.filesystem("memory")
        if memory.exists(root):
            memory.rm(root, recursive=True)
    else:
        server = s3_env(_server(request, backend))
        yield f"s3://{server.create_bucket()}/0/run/artifacts"


@pytest.fixture(params=S3_BACKENDS)
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    return _server(request, request.param)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make tempfile's directory (where dst_path=None downloads go) private to the test."""
    path = tmp_path / "tempdir"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A small local tree: x.txt, a/b/y.txt, a/z.bin."""
    root = tmp_path / "src"
    (root / "a" / "b").mkdir(parents=True)
    (root / "x.txt").write_text("hi\n")
    (root / "a" / "b" / "y.txt").write_text("deep\n")
    (root / "a" / "z.bin").write_bytes(bytes(range(256)))
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


# -- round trips on every backend ----------------------------------------------------------------


def test_log_artifact_and_list(artifact_uri: str, src: Path) -> None:
    repo = ArtifactRepository(artifact_uri)
    assert repo.list_artifacts() == []
    repo.log_artifact(src / "x.txt")
    repo.log_artifact(str(src / "a" / "z.bin"), "sub/dir")

    assert repo.list_artifacts() == [
        FileInfo(path="sub", is_dir=True, file_size=None),
        FileInfo(path="x.txt", is_dir=False, file_size=3),
    ]
    assert repo.list_artifacts("sub") == [FileInfo(path="sub/dir", is_dir=True, file_size=None)]
    assert repo.list_artifacts("sub/dir/") == [
        FileInfo(path="sub/dir/z.bin", is_dir=False, file_size=256)
    ]
    assert repo.list_artifacts("x.txt") == []  # a file has no children (MLflow's semantics)
    assert repo.list_artifacts("missing") == []


def test_log_artifacts_download_round_trip(
    artifact_uri: str, src: Path, tmp_path: Path, private_tmp: Path
) -> None:
    repo = ArtifactRepository(artifact_uri)
    repo.log_artifacts(src)
    repo.log_artifacts(src, "copy")
    assert [f.path for f in repo.list_artifacts()] == ["a", "copy", "x.txt"]
    assert [f.path for f in repo.list_artifacts("copy/a")] == ["copy/a/b", "copy/a/z.bin"]

    whole = repo.download_artifacts(dst_path=str(tmp_path / "all"))
    assert whole == str(tmp_path / "all")
    expected = _tree(src)
    assert _tree(Path(whole)) == {**expected, **{f"copy/{k}": v for k, v in expected.items()}}

    sub = repo.download_artifacts("copy/a", str(tmp_path / "sub"))
    assert sub == str(tmp_path / "sub" / "copy" / "a")
    assert _tree(Path(sub)) == {"b/y.txt": b"deep\n", "z.bin": bytes(range(256))}

    one = repo.download_artifacts("copy/a/b/y.txt")  # no dst_path: a fresh temporary directory
    assert Path(one).read_bytes() == b"deep\n"
    assert Path(one).relative_to(private_tmp).as_posix().endswith("copy/a/b/y.txt")


def test_write_bytes_and_download(artifact_uri: str, tmp_path: Path) -> None:
    repo = ArtifactRepository(artifact_uri)
    repo.write_bytes("tables/t.json", b'{"columns": []}')
    repo.write_bytes("note.txt", "héllo".encode())
    repo.write_bytes("note.txt", b"overwritten")
    assert repo.list_artifacts("tables") == [
        FileInfo(path="tables/t.json", is_dir=False, file_size=15)
    ]
    path = repo.download_artifacts("note.txt", str(tmp_path / "dl"))
    assert path == str(tmp_path / "dl" / "note.txt")
    assert Path(path).read_bytes() == b"overwritten"


def test_download_missing_artifact_is_not_found(artifact_uri: str, tmp_path: Path) -> None:
    repo = ArtifactRepository(artifact_uri)
    repo.write_bytes("present.txt", b"x")
    with pytest.raises(NotFoundError, match=r"missing\.txt"):
        repo.download_artifacts("missing.txt", str(tmp_path))
    with pytest.raises(NotFoundError, match="nodir"):
        repo.download_artifacts("nodir/", str(tmp_path))


def test_download_of_empty_root_is_an_empty_directory(artifact_uri: str, private_tmp: Path) -> None:
    path = ArtifactRepository(artifact_uri).download_artifacts()
    assert Path(path).parent == private_tmp and os.listdir(path) == []


def test_delete_artifacts(artifact_uri: str, src: Path) -> None:
    repo = ArtifactRepository(artifact_uri)
    repo.log_artifacts(src)
    repo.delete_artifacts("a/b")
    assert [f.path for f in repo.list_artifacts("a")] == ["a/z.bin"]
    repo.delete_artifacts("x.txt")
    assert [f.path for f in repo.list_artifacts()] == ["a"]
    repo.delete_artifacts("never/existed")
    repo.delete_artifacts()
    assert repo.list_artifacts() == []


BAD_PATHS = ["../x", "/etc/passwd", "a/../../b", "%2e%2e/x", "a/%2E%2E/%2e%2e/b", "..\\x", "C:/x"]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_traversal_paths_are_rejected(artifact_uri: str, src: Path, bad: str) -> None:
    repo = ArtifactRepository(artifact_uri)
    calls: list[Callable[[], object]] = [
        lambda: repo.log_artifact(src / "x.txt", bad),
        lambda: repo.log_artifacts(src, bad),
        lambda: repo.write_bytes(bad, b"x"),
        lambda: repo.list_artifacts(bad),
        lambda: repo.download_artifacts(bad),
        lambda: repo.delete_artifacts(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidParameterError) as info:
            call()
        assert repr(bad) in str(info.value) and "relative" in str(info.value)
    assert repo.list_artifacts() == []  # nothing was written anywhere under the root


def test_harmless_odd_paths_are_normalised(tmp_path: Path) -> None:
    repo = ArtifactRepository(str(tmp_path / "root"))
    repo.write_bytes("./a//b/./c.txt", b"1")
    repo.write_bytes("100%.txt", b"2")
    repo.write_bytes("a%20b.txt", b"3")
    assert [f.path for f in repo.list_artifacts()] == ["100%.txt", "a", "a%20b.txt"]
    assert [f.path for f in repo.list_artifacts("a/b")] == ["a/b/c.txt"]


def test_local_paths_and_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_uri("mlruns/0") == (tmp_path / "mlruns" / "0").as_uri()
    assert resolve_uri(str(tmp_path)) == tmp_path.as_uri()
    for uri in ("s3://bucket/prefix", "memory://x", "file:///abs/p", "mlflow-artifacts:/1/r"):
        assert resolve_uri(uri) == uri
    repo = ArtifactRepository("relative/root")
    repo.write_bytes("f.txt", b"x")
    assert (tmp_path / "relative" / "root" / "f.txt").read_bytes() == b"x"
    assert repo.artifact_uri == (tmp_path / "relative" / "root").as_uri()


def test_bad_local_sources(tmp_path: Path, src: Path) -> None:
    repo = ArtifactRepository(str(tmp_path / "root"))
    with pytest.raises(InvalidParameterError, match="does not exist"):
        repo.log_artifact(tmp_path / "nope.txt")
    with pytest.raises(InvalidParameterError, match="log_artifacts"):
        repo.log_artifact(src)
    with pytest.raises(InvalidParameterError, match="not a directory"):
        repo.log_artifacts(src / "x.txt")


# -- S3: volume, failures, configuration ---------------------------------------------------------


def test_large_file_round_trip_is_byte_exact(
    s3_server: S3Server, s3_env: SetEnv, tmp_path: Path
) -> None:
    s3_env(s3_server)
    big = tmp_path / "big.bin"
    with big.open("wb") as f:
        for _ in range(50):
            f.write(os.urandom(MiB))
    repo = ArtifactRepository(f"s3://{s3_server.create_bucket()}/run/artifacts")
    repo.log_artifact(big, "data")
    assert repo.list_artifacts("data") == [
        FileInfo(path="data/big.bin", is_dir=False, file_size=50 * MiB)
    ]
    got = Path(repo.download_artifacts("data/big.bin", str(tmp_path / "dl")))
    assert got.stat().st_size == 50 * MiB
    assert _sha256(got) == _sha256(big)


def test_many_small_files_round_trip(s3_server: S3Server, s3_env: SetEnv, tmp_path: Path) -> None:
    s3_env(s3_server)
    src = tmp_path / "many"
    for i in range(500):
        path = src / f"d{i % 5}" / f"e{i % 7}" / f"f{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(i % 97) + f"file {i}".encode())
    repo = ArtifactRepository(f"s3://{s3_server.create_bucket()}/run/artifacts")
    repo.log_artifacts(src, "many")
    assert [f.path for f in repo.list_artifacts("many")] == [f"many/d{i}" for i in range(5)]
    got = Path(repo.download_artifacts("many", str(tmp_path / "dl")))
    assert _tree(got) == _tree(src)


def test_bucket_root_without_prefix(s3_server: S3Server, s3_env: SetEnv, tmp_path: Path) -> None:
    s3_env(s3_server)
    bucket = s3_server.create_bucket()
    repo = ArtifactRepository(f"s3://{bucket}")
    repo.write_bytes("a/b.txt", b"x")
    repo.write_bytes("ab.txt", b"y")
    repo.delete_artifacts("a")  # must not touch "ab.txt"
    assert repo.list_artifacts() == [FileInfo(path="ab.txt", is_dir=False, file_size=1)]
    repo.delete_artifacts()  # empties the bucket, keeps it
    assert repo.list_artifacts() == []
    s3_server.client().head_bucket(Bucket=bucket)


def _assert_access_denied(repo: ArtifactRepository, src: Path, bucket: str) -> None:
    for call in (
        lambda: repo.log_artifact(src / "x.txt"),
        lambda: repo.list_artifacts(),
        lambda: repo.download_artifacts("x.txt"),
    ):
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert "access denied / invalid credentials" in message, message
        assert f"s3://{bucket}/run/artifacts" in message
        assert "AWS_ACCESS_KEY_ID" in message and "AWS_SECRET_ACCESS_KEY" in message


def test_wrong_credentials_seaweedfs(seaweedfs_s3: S3Server, s3_env: SetEnv, src: Path) -> None:
    bucket = seaweedfs_s3.create_bucket()
    s3_env(seaweedfs_s3, secret_key="not-the-secret")
    _assert_access_denied(ArtifactRepository(f"s3://{bucket}/run/artifacts"), src, bucket)
    s3_env(seaweedfs_s3, access_key="AKUNKNOWNKEY0000")
    _assert_access_denied(ArtifactRepository(f"s3://{bucket}/run/artifacts"), src, bucket)


def test_wrong_credentials_moto(moto_s3: S3Server, s3_env: SetEnv, src: Path) -> None:
    bucket = moto_s3.create_bucket()
    s3_env(moto_s3, access_key="AKIAUNKNOWNKEY000000", secret_key="wrong")
    with moto_s3.enforcing_credentials():
        _assert_access_denied(ArtifactRepository(f"s3://{bucket}/run/artifacts"), src, bucket)


def test_unreachable_endpoint_fails_fast(seaweedfs_s3: S3Server, s3_env: SetEnv, src: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    s3_env(seaweedfs_s3, endpoint_url=dead)
    repo = ArtifactRepository("s3://some-bucket/run/artifacts")
    for call in (lambda: repo.log_artifact(src / "x.txt"), lambda: repo.list_artifacts()):
        start = time.monotonic()
        with pytest.raises(StorageError) as info:
            call()
        assert time.monotonic() - start < 15
        message = str(info.value)
        assert "could not connect to" in message and dead in message, message
        assert "AWS_ENDPOINT_URL" in message


def test_missing_bucket_is_a_storage_error(s3_server: S3Server, s3_env: SetEnv, src: Path) -> None:
    s3_env(s3_server)
    repo = ArtifactRepository(f"s3://no-such-bucket-{uuid.uuid4().hex[:12]}/run/artifacts")
    for call in (
        lambda: repo.log_artifact(src / "x.txt"),
        lambda: repo.write_bytes("f.txt", b"x"),
        lambda: repo.download_artifacts("f.txt"),
        lambda: repo.list_artifacts(),
    ):
        with pytest.raises(StorageError, match=r"bucket 'no-such-bucket-.*' does not exist"):
            call()


def test_mlflow_s3_endpoint_url_is_honoured(
    seaweedfs_s3: S3Server, s3_env: SetEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(seaweedfs_s3, endpoint_url=f"http://127.0.0.1:{free_port()}")  # dead AWS_ENDPOINT_URL
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", seaweedfs_s3.endpoint_url)
    repo = ArtifactRepository(f"s3://{seaweedfs_s3.create_bucket()}/run/artifacts")
    repo.write_bytes("f.txt", b"via MLFLOW_S3_ENDPOINT_URL")
    assert repo.list_artifacts() == [FileInfo(path="f.txt", is_dir=False, file_size=26)]


def test_storage_options_in_code(seaweedfs_s3: S3Server, s3_env: SetEnv) -> None:
    s3_env(seaweedfs_s3, endpoint_url=f"http://127.0.0.1:{free_port()}")
    uri = f"s3://{seaweedfs_s3.create_bucket()}/run/artifacts"
    set_storage_options("s3", endpoint_url=seaweedfs_s3.endpoint_url)
    try:
        ArtifactRepository(uri).write_bytes("f.txt", b"1")
    finally:
        set_storage_options("s3")
    with pytest.raises(StorageError, match="could not connect"):
        ArtifactRepository(uri).write_bytes("f.txt", b"2")
    repo = ArtifactRepository(uri, storage_options={"endpoint_url": seaweedfs_s3.endpoint_url})
    assert repo.list_artifacts() == [FileInfo(path="f.txt", is_dir=False, file_size=1)]


def test_aws_profile_and_missing_credentials(
    seaweedfs_s3: S3Server, s3_env: SetEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s3_env(seaweedfs_s3)
    uri = f"s3://{seaweedfs_s3.create_bucket()}/run/artifacts"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match=r"no usable AWS credentials.*AWS_ACCESS_KEY_ID"):
        ArtifactRepository(uri).write_bytes("f.txt", b"x")

    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(StorageError, match=r"no-such-profile.*check AWS_PROFILE"):
        ArtifactRepository(uri).write_bytes("f.txt", b"x")

    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[trackflow]\naws_access_key_id = {seaweedfs_s3.access_key}\n"
        f"aws_secret_access_key = {seaweedfs_s3.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "trackflow")
    ArtifactRepository(uri).write_bytes("f.txt", b"via profile")
    assert ArtifactRepository(uri).list_artifacts() == [
        FileInfo(path="f.txt", is_dir=False, file_size=11)
    ]


def test_symlink_out_of_a_local_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    repo = ArtifactRepository(str(root))
    with pytest.raises(InvalidParameterError, match="outside the artifact root"):
        repo.download_artifacts("link.txt", str(tmp_path / "out"))

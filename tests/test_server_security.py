"""Security of the tracking server: authentication, path traversal, size limits, error hygiene.

The server runs for real (uvicorn in a thread, on a free 127.0.0.1 port). Requests that must
reach the server byte for byte (``../``, ``%2e%2e``, backslashes) go through http.client,
which, unlike httpx, does not normalise paths.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from server_process import serving

from tracking.errors import StorageError
from tracking.servers.api import app_from_env, create_app
from tracking.servers.api.security import Credentials, safe_relative_path

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

TOKEN = "tok-" + uuid.uuid4().hex
BASIC = ("alice", "s3cret:with:colons")
API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
MAX_REQUEST = 64 * 1024
MAX_ARTIFACT = 256 * 1024


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@dataclass
class Running:
    url: str
    app: FastAPI
    destination: Path
    outside: Path  # a folder next to the artifact root that must stay untouched

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("secured")
    destination = root / "artifacts"
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    app = create_app(
        str(root / "mlruns"),
        artifacts_destination=str(destination),
        auth_token=TOKEN,
        basic_auth=":".join(BASIC),
        max_request_bytes=MAX_REQUEST,
        max_artifact_bytes=MAX_ARTIFACT,
        allowed_hosts=["localhost", "127.0.0.1"],
    )
    with serving(app) as url:
        yield Running(url, app, destination, outside)


@pytest.fixture
def api(secured: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secured.url, headers=bearer(), timeout=30) as client:
        yield client


def raw(
    running: Running,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any] | None, bytes]:
    """Send `target` exactly as written; return (status, JSON body or None, raw body)."""
    connection = HTTPConnection("127.0.0.1", running.port, timeout=30)
    try:
        connection.request(method, target, body=body, headers={**bearer(), **(headers or {})})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = None
    return response.status, parsed, data


def outside_untouched(running: Running) -> None:
    assert sorted(p.name for p in running.outside.iterdir()) == ["secret.txt"]
    assert (running.outside / "secret.txt").read_text() == "top secret"


# --------------------------------------------------------------------------- authentication


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route: the JSON API's (answered by ApiDispatcher) and FastAPI's,
    including those of included routers (FastAPI >= 0.150 keeps them as routers with an include
    context instead of copying them)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            context = getattr(route, "include_context", None)
            if context is not None:
                yield from walk(route.original_router.routes, prefix + context.prefix)
            elif isinstance(route, APIRoute):
                path = (prefix + route.path).replace("{artifact_path:path}", "1/r/artifacts/x.txt")
                for method in sorted(route.methods - {"HEAD"}):
                    yield method, path

    api = [(m, path) for path, by_method in app.state.api_routes.items() for m in by_method]
    return sorted(r for r in api if r[0] != "HEAD") + list(walk(app.routes, ""))


def test_every_endpoint_requires_credentials(secured: Running) -> None:
    routes = _routes(secured.app)
    paths = {path for _, path in routes}
    assert any(p.startswith("/api/2.0/mlflow-artifacts/") for p in paths)
    assert any(p.startswith("/ajax-api/2.0/mlflow/") for p in paths)
    assert len(routes) > 40
    wrong = [
        {},
        bearer("wrong"),
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},
        basic(BASIC[0], "wrong"),
        basic("mallory", BASIC[1]),
        {"Authorization": "Basic not-base64!!"},
        {"Authorization": "Digest whatever"},
    ]
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for method, path in [*routes, ("GET", "/no/such/path"), ("GET", "/health/")]:
            for headers in wrong:
                response = client.request(method, path, headers=headers, content=b"{}")
                if path == "/health":
                    assert response.status_code == 200
                    continue
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["error_code"] == "UNAUTHENTICATED"
                assert "Bearer" in response.headers["www-authenticate"]
                assert "Basic" in response.headers["www-authenticate"]


def test_valid_credentials_are_accepted(secured: Running) -> None:
    with httpx.Client(base_url=secured.url, timeout=30) as client:
        for headers in (
            bearer(),
            {"Authorization": f"bearer {TOKEN}"},
            basic(*BASIC),
        ):
            response = client.post(
                f"{API}/experiments/search", json={"max_results": 5}, headers=headers
            )
            assert response.status_code == 200, response.text
            target = f"{ARTIFACTS}/auth-check/{uuid.uuid4().hex}.txt"
            assert client.put(target, content=b"ok", headers=headers).status_code == 200
            assert client.get(target, headers=headers).content == b"ok"
            assert client.delete(target, headers=headers).status_code == 200
        assert client.get("/version", headers=basic(*BASIC)).status_code == 200


def test_mlflow_client_authenticates_with_token_or_basic(
    secured: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.tracking.fluent as mlflow_fluent

    monkeypatch.setattr(mlflow_fluent, "_active_experiment_id", None)
    for name, value in {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    mlflow.set_tracking_uri(secured.url)
    try:
        for credentials in (
            {"MLFLOW_TRACKING_TOKEN": TOKEN},
            {"MLFLOW_TRACKING_USERNAME": BASIC[0], "MLFLOW_TRACKING_PASSWORD": BASIC[1]},
        ):
            for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
            for name, value in credentials.items():
                monkeypatch.setenv(name, value)
            client = mlflow.MlflowClient()
            run = client.create_run(client.create_experiment(f"auth-{uuid.uuid4().hex[:8]}"))
            note = tmp_path / "note.txt"
            note.write_text("authenticated upload")
            client.log_artifact(run.info.run_id, str(note))
            client.log_metric(run.info.run_id, "m", 1.0)
            assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["note.txt"]
            local = client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "dl"))
            assert Path(local).read_text() == "authenticated upload"
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        with pytest.raises(mlflow.exceptions.MlflowException, match="UNAUTHENTICATED"):
            mlflow.MlflowClient().search_experiments()
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def test_auth_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKFLOW_SERVER_BACKEND_STORE_URI", str(tmp_path / "mlruns"))
    monkeypatch.setenv("TRACKFLOW_SERVER_ARTIFACTS_DESTINATION", str(tmp_path / "art"))
    monkeypatch.setenv("TRACKFLOW_SERVER_TOKEN", "env-token")
    monkeypatch.setenv("TRACKFLOW_SERVER_BASIC_AUTH", "bob:pw")
    with serving(app_from_env()) as url, httpx.Client(base_url=url) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/version").status_code == 401
        assert client.get("/version", headers=bearer("env-token")).status_code == 200
        assert client.get("/version", headers=basic("bob", "pw")).status_code == 200
        assert client.put(f"{ARTIFACTS}/x.txt", content=b"x").status_code == 401
        assert not (tmp_path / "art" / "x.txt").exists()


def test_bad_auth_settings_are_refused() -> None:
    for bad in ("no-colon", ":password", "user:"):
        with pytest.raises(ValueError, match="user:password"):
            Credentials(basic=bad)
    with pytest.raises(ValueError):
        Credentials(token="  ")


# --------------------------------------------------------------------------- path traversal

TRAVERSALS = [
    "../../../etc/passwd",
    "a/../../b.txt",
    "..",
    "/etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2E%2E%2Fsecret.txt",
    "%252e%252e%252fetc%252fpasswd",
    "%25252e%25252e%25252fsecret.txt",
    "..%5c..%5csecret.txt",
    "a%5cb.txt",
    "%255c%255csecret.txt",
    "c:%5cwindows%5cwin.ini",
    "C:/windows/win.ini",
    "file:%2f%2f%2fetc%2fpasswd",
    "a%00b.txt",
    "a%0ab.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_artifact_proxy_refuses_traversal(secured: Running, method: str, path: str) -> None:
    # "/etc/passwd" becomes ".../artifacts//etc/passwd": an absolute artifact path
    target = f"{ARTIFACTS}/{path}"
    body = b"pwned" if method == "PUT" else None
    status, payload, data = raw(secured, method, target, body)
    assert status == 400, (status, data)
    assert payload is not None and payload["error_code"] == "INVALID_PARAMETER_VALUE"
    assert b"Traceback" not in data
    outside_untouched(secured)


def test_artifact_proxy_refuses_a_literal_backslash(secured: Running) -> None:
    for method in ("GET", "PUT", "DELETE"):
        status, _, data = raw(secured, method, f"{ARTIFACTS}/..\\..\\secret.txt", b"x")
        assert status == 400, data
    outside_untouched(secured)


@pytest.mark.parametrize(
    "query",
    ["..", "../..", "a/../..", "/etc", "%2e%2e", "%252e%252e%252f", "..%5c", "a%5cb", "%00"],
)
def test_listings_refuse_traversal(secured: Running, query: str) -> None:
    status, payload, _ = raw(secured, "GET", f"{ARTIFACTS}?path={query}")
    assert status == 400 and payload is not None
    assert payload["error_code"] == "INVALID_PARAMETER_VALUE"

    experiment = httpx.post(
        f"{secured.url}{API}/experiments/create",
        json={"name": f"list-{uuid.uuid4().hex[:8]}"},
        headers=bearer(),
    ).json()["experiment_id"]
    run = httpx.post(
        f"{secured.url}{API}/runs/create", json={"experiment_id": experiment}, headers=bearer()
    ).json()["run"]["info"]["run_id"]
    status, payload, _ = raw(secured, "GET", f"{API}/artifacts/list?run_id={run}&path={query}")
    assert status == 400 and payload is not None
    assert payload["error_code"] == "INVALID_PARAMETER_VALUE"


def test_http_client_normalised_dot_segments_stay_inside(
    secured: Running, api: httpx.Client
) -> None:
    """httpx resolves "a/../b" before sending; whatever arrives stays inside the root."""
    response = api.put(f"{ARTIFACTS}/inside/../kept.txt", content=b"fine")
    assert response.status_code == 200
    assert (secured.destination / "kept.txt").read_text() == "fine"


def test_symlinks_leading_outside_are_refused(secured: Running, api: httpx.Client) -> None:
    destination = secured.destination
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "evil-dir").symlink_to(secured.outside, target_is_directory=True)
    (destination / "evil-file.txt").symlink_to(secured.outside / "secret.txt")
    (destination / "dangling").symlink_to(secured.outside / "not-yet.txt")
    (destination / "real").mkdir()
    (destination / "real" / "ok.txt").write_text("inside")
    (destination / "alias").symlink_to(destination / "real", target_is_directory=True)
    try:
        for method, target in [
            ("GET", "evil-dir/secret.txt"),
            ("GET", "evil-file.txt"),
            ("PUT", "evil-dir/new.txt"),
            ("PUT", "evil-dir/sub/new.txt"),
            ("PUT", "evil-file.txt"),
            ("PUT", "dangling"),
            ("DELETE", "evil-dir/secret.txt"),
            ("DELETE", "evil-dir"),
            ("DELETE", "evil-file.txt"),
        ]:
            response = api.request(method, f"{ARTIFACTS}/{target}", content=b"pwned")
            assert response.status_code == 400, (method, target, response.text)
            assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
            outside_untouched(secured)
        listing = api.get(ARTIFACTS, params={"path": "evil-dir"})
        assert listing.status_code == 400
        names = {f["path"] for f in api.get(ARTIFACTS).json()["files"]}
        assert {"evil-dir", "evil-file.txt", "dangling"}.isdisjoint(names)
        assert {"real", "alias"} <= names
        # a symlink that stays inside the root is fine
        assert api.get(f"{ARTIFACTS}/alias/ok.txt").content == b"inside"
    finally:
        for name in ("evil-dir", "evil-file.txt", "dangling", "alias"):
            (destination / name).unlink()


def test_run_listing_refuses_symlinks_out_of_the_run(secured: Running, api: httpx.Client) -> None:
    experiment = api.post(
        f"{API}/experiments/create", json={"name": f"sym-{uuid.uuid4().hex[:8]}"}
    ).json()["experiment_id"]
    run = api.post(f"{API}/runs/create", json={"experiment_id": experiment}).json()["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:/")
    run_root = secured.destination / experiment / run_id / "artifacts"
    run_root.mkdir(parents=True)
    (run_root / "escape").symlink_to(secured.outside, target_is_directory=True)
    response = api.get(f"{API}/artifacts/list", params={"run_id": run_id, "path": "escape"})
    assert response.status_code == 400
    listed = api.get(f"{API}/artifacts/list", params={"run_id": run_id}).json()
    assert listed["files"] == []


def test_experiment_artifact_locations_cannot_traverse(secured: Running, api: httpx.Client) -> None:
    for location in (
        "mlflow-artifacts:/../../etc",
        "mlflow-artifacts:/%2e%2e/%2e%2e/etc",
        "mlflow-artifacts:/%252e%252e/x",
        "file:///tmp/../etc",
        "s3://bucket/a/../../b",
        "runs:/0123/artifacts",
        "file:///tmp/x?query=1",
    ):
        response = api.post(
            f"{API}/experiments/create",
            json={"name": f"loc-{uuid.uuid4().hex[:8]}", "artifact_location": location},
        )
        assert response.status_code == 400, (location, response.text)
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_safe_relative_path_unit() -> None:
    assert safe_relative_path("a//b/./c/") == "a/b/c"
    assert safe_relative_path("") == ""
    assert safe_relative_path("name with %20 space.txt") == "name with %20 space.txt"
    assert safe_relative_path("v1.2..3/file..txt") == "v1.2..3/file..txt"
    for bad in TRAVERSALS:
        from urllib.parse import unquote

        with pytest.raises(ValueError):
            safe_relative_path(unquote(bad))  # as the HTTP layer hands it over


# --------------------------------------------------------------------------- request sizes


def test_oversized_api_request_is_refused(secured: Running, api: httpx.Client) -> None:
    big = {"experiment_ids": ["0"], "filter": "x" * (MAX_REQUEST + 1)}
    response = api.post(f"{API}/runs/search", json=big)
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield b'{"filter": "'
        for _ in range(MAX_REQUEST // 1024 + 2):
            yield b"y" * 1024
        yield b'"}'

    response = api.post(
        f"{API}/runs/search", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert api.post(f"{API}/runs/search", json={"experiment_ids": ["0"]}).status_code == 200


def test_oversized_artifact_upload_is_refused_and_leaves_nothing(
    secured: Running, api: httpx.Client
) -> None:
    name = f"big-{uuid.uuid4().hex[:8]}"
    response = api.put(f"{ARTIFACTS}/{name}/declared.bin", content=b"x" * (MAX_ARTIFACT + 1))
    assert response.status_code == 413
    assert response.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_ARTIFACT // 4096 + 2):
            yield b"z" * 4096

    response = api.put(f"{ARTIFACTS}/{name}/streamed.bin", content=chunks())
    assert response.status_code == 413
    folder = secured.destination / name
    assert not (folder / "declared.bin").exists() and not (folder / "streamed.bin").exists()
    assert list(secured.destination.rglob(".upload-*")) == []
    # artifacts have their own limit: larger than an API request is fine
    fits = b"f" * (MAX_REQUEST * 2)
    assert api.put(f"{ARTIFACTS}/{name}/fits.bin", content=fits).status_code == 200
    assert (folder / "fits.bin").read_bytes() == fits


# --------------------------------------------------------------------------- error hygiene


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(str(tmp_path / "mlruns"), artifacts_destination=str(tmp_path / "art"))
    with serving(app) as url:
        yield url, app


def test_internal_errors_return_json_without_traceback(
    plain: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url, app = plain
    store = app.state.trackflow.store

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom at /very/secret/path")

    def storage_down(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("Database error on postgresql://admin@db-internal:5432/x")

    monkeypatch.setattr(store, "get_experiment", explode)
    monkeypatch.setattr(store, "search_runs", storage_down)
    caplog.set_level(logging.ERROR, logger="tracking.servers.api")
    with httpx.Client(base_url=url) as client:
        for response in (
            client.get(f"{API}/experiments/get", params={"experiment_id": "0"}),
            client.post(f"{API}/runs/search", json={"experiment_ids": ["0"]}),
        ):
            assert response.status_code == 500
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert set(body) == {"error_code", "message"}
            assert body["error_code"] == "INTERNAL_ERROR"
            for leak in ("Traceback", "boom", "secret", "RuntimeError", "admin", "db-internal"):
                assert leak not in response.text
            error_id = body["message"].split("error id ")[1].split(";")[0]
            assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert any("boom at /very/secret/path" in r.exc_text for r in caplog.records if r.exc_text)


def test_malformed_requests_get_json_errors(plain: tuple[str, FastAPI]) -> None:
    url, _ = plain
    with httpx.Client(base_url=url) as client:
        response = client.post(
            f"{API}/runs/create", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400 and response.json()["error_code"]
        response = client.post(
            f"{API}/runs/create",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert "Traceback" not in response.text


def test_foreign_hosts_and_cross_site_writes_are_refused(secured: Running) -> None:
    with httpx.Client(base_url=secured.url, headers=bearer(), timeout=30) as client:
        rebinding = client.get(f"{API}/experiments/search", headers={"Host": "evil.example"})
        assert rebinding.status_code == 403
        assert client.get("/health", headers={"Host": "evil.example"}).status_code == 200
        csrf = client.post(
            f"{API}/experiments/create",
            json={"name": "csrf"},
            headers={"Origin": "http://evil.example"},
        )
        assert csrf.status_code == 403
        simple_form = client.post(
            f"{API}/experiments/create",
            content=b'{"name": "csrf2"}',
            headers={"Content-Type": "text/plain"},
        )
        assert simple_form.status_code == 415
        same_origin = client.post(
            f"{API}/experiments/search", json={}, headers={"Origin": secured.url}
        )
        assert same_origin.status_code == 200
        found = client.get(
            f"{API}/experiments/get-by-name", params={"experiment_name": "csrf"}
        ).status_code
        assert found == 404


def test_responses_carry_security_headers(secured: Running, api: httpx.Client) -> None:
    for response in (api.get("/health"), api.get(f"{API}/nope"), api.get("/version")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
    page = b"<html><script>alert(1)</script></html>"
    assert api.put(f"{ARTIFACTS}/page.html", content=page).status_code == 200
    download = api.get(f"{ARTIFACTS}/page.html")
    assert download.content == page
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in download.headers["content-security-policy"]


def test_no_openapi_or_docs_pages(secured: Running, api: httpx.Client) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert api.get(path).status_code == 404

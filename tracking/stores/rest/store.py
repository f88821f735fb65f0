"""REST store: a client of an MLflow-compatible tracking server (MLflow's own or Trackflow's).

``set_tracking_uri("http://127.0.0.1:5000")`` (or ``https://...``, with an optional path prefix)
selects this store. It speaks MLflow's REST API, ``/api/2.0/mlflow/...`` with the JSON shapes of
``mlflow/protos/service.proto``, so it works against a stock ``mlflow server``.

Transport
    One pooled keep-alive ``httpx.Client`` per store (re-created in a forked child). Connection
    errors, timeouts and HTTP 408/429/500/502/503/504 are retried with exponential backoff:
    at most ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` retries (default 5), sleeping
    ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR * 2**(n-1)`` seconds before retry n (default factor 1:
    1, 2, 4, 8, 16 s, plus up to 25% jitter, at most 30 s each; ``Retry-After`` is honoured), and
    never sleeping past ``TRACKFLOW_HTTP_RETRY_TIMEOUT`` seconds after the first attempt (default
    60). One request times out after ``MLFLOW_HTTP_REQUEST_TIMEOUT`` seconds (default 120;
    connecting: 10). Past that: ``StorageError("Cannot reach tracking server at URL: ...")``.
    As with MLflow's client, a POST whose answer was lost may be applied twice by the retry.

Auth and TLS (read on every request, like MLflow)
    ``MLFLOW_TRACKING_TOKEN`` (bearer), else ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD`` (basic), else ``user:password@`` in the URI.
    ``MLFLOW_TRACKING_INSECURE_TLS=true``, ``MLFLOW_TRACKING_SERVER_CERT_PATH`` (CA bundle) and
    ``MLFLOW_TRACKING_CLIENT_CERT_PATH`` (PEM with certificate and key) are honoured too.

Errors
    An answer ``{"error_code": ..., "message": ...}`` becomes NotFoundError
    (RESOURCE_DOES_NOT_EXIST), InvalidParameterError (INVALID_PARAMETER_VALUE), AlreadyExistsError
    (RESOURCE_ALREADY_EXISTS), InvalidStateError (INVALID_STATE), else TrackingError, carrying the
    server's message and code. Keys and values are validated here first, by the same rules as the
    other stores, so bad input fails before any request. Note: a stock MLflow server reports
    "logging to a deleted run" as INVALID_PARAMETER_VALUE, where the file and SQL stores raise
    InvalidStateError.

Batches
    ``log_batch`` accepts any number of values and sends one ``runs/log-batch`` request per
    chunk of at most 1000 metrics, 100 params, 100 tags, 1000 values and ~900 kB of JSON (MLflow's
    limits). Values are validated as a whole first, but a later chunk can still fail on the
    server (say, a changed param) after earlier chunks were written.

Run ids chosen by the caller (Trackflow extension)
    ``create_run(run_id=...)`` (Prefect-tracked runs use Prefect's ids) sends ``"run_id"`` in
    the ``runs/create`` body. Trackflow's server honours it (and answers RESOURCE_ALREADY_EXISTS
    for a taken id); MLflow's server ignores unknown fields and chooses its own id. For such a
    server the run is created with the tag ``trackflow.requested_run_id=<requested id>`` and:

    * the Run returned (and every Run read later) carries the server's id;
    * this store instance translates the requested id to the server's id in every later call;
    * another process (a Prefect worker, a resumed flow) finds the run by that tag when the
      server answers "not found" for the requested id (one search over all experiments, cached);
    * ``create_run`` with a requested id that is already taken raises AlreadyExistsError, as the
      other stores do, so a retried Prefect run resumes its run instead of creating another.

    Not translated: ids inside ``search_runs`` filters (``attributes.run_id = '...'``); filter on
    ``tags.`trackflow.requested_run_id``` instead.

Experiment artifact locations
    The server chooses them (``mlflow-artifacts:/<experiment id>`` on a server proxying
    artifacts). With an explicit ``artifact_root`` (``MLFLOW_ARTIFACT_ROOT``) new experiments get
    ``<artifact_root>/<random hex>``, because the id is not known before the server assigns it.

Artifacts on the server's proxy (``mlflow-artifacts:/...``) go through ProxyArtifactFileSystem
below, used by tracking.artifacts.ArtifactRepository.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import mimetypes
import os
import posixpath
import random
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
from fsspec import AbstractFileSystem

from tracking import logged_models, search, validation
from tracking.config import redact_uri
from tracking.entities import (
    DatasetInput,
    DatasetSummary,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelOutput,
    LoggedModelStatus,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
    RunTag,
    ViewType,
)
from tracking.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidStateError,
    NotFoundError,
    StorageError,
    TrackingError,
)
from tracking.stores.base import (
    SEARCH_MAX_RESULTS_DEFAULT,
    PagedList,
    TrackingStore,
    all_pages,
    check_max_results,
)

__all__ = [
    "ARTIFACTS_API",
    "REQUESTED_RUN_ID_TAG",
    "HttpSession",
    "ProxyArtifactFileSystem",
    "RestStore",
    "RetryPolicy",
    "proxy_filesystem",
    "split_proxy_uri",
]

T = TypeVar("T")

API = "/api/2.0/mlflow"
AJAX_API = "/ajax-api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
REQUESTED_RUN_ID_TAG = "trackflow.requested_run_id"
RUN_NAME_TAG = "mlflow.runName"
DEFAULT_EXPERIMENT_ID = "0"

MAX_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
BACKOFF_FACTOR_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"
TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"
RETRY_TIMEOUT_ENV = "TRACKFLOW_HTTP_RETRY_TIMEOUT"
TOKEN_ENV = "MLFLOW_TRACKING_TOKEN"
USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
INSECURE_TLS_ENV = "MLFLOW_TRACKING_INSECURE_TLS"
SERVER_CERT_ENV = "MLFLOW_TRACKING_SERVER_CERT_PATH"
CLIENT_CERT_ENV = "MLFLOW_TRACKING_CLIENT_CERT_PATH"

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CONNECT_TIMEOUT = 10.0
BACKOFF_MAX = 30.0
CHUNK_SIZE = 2**20  # bytes per read/write when streaming artifacts
BATCH_JSON_LIMIT = 900_000  # MLflow rejects log-batch bodies over 1 MB
EXPERIMENT_IDS_PER_SEARCH = 100

_ERROR_CLASSES: dict[str, type[TrackingError]] = {
    "RESOURCE_DOES_NOT_EXIST": NotFoundError,
    "INVALID_PARAMETER_VALUE": InvalidParameterError,
    "RESOURCE_ALREADY_EXISTS": AlreadyExistsError,
    "INVALID_STATE": InvalidStateError,
}


# --- configuration -------------------------------------------------------------------------------
def _env_number(name: str, default: float, cast: Callable[[str], float] = float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidParameterError(f"{name}={raw!r} is not a non-negative number")
    return value


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: see the module docstring for the variables."""

    max_retries: int = 5
    backoff_factor: float = 1.0
    timeout: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            max_retries=int(_env_number(MAX_RETRIES_ENV, cls.max_retries, int)),
            backoff_factor=_env_number(BACKOFF_FACTOR_ENV, cls.backoff_factor),
            timeout=_env_number(RETRY_TIMEOUT_ENV, cls.timeout),
        )

    def delay(self, attempt: int, started: float, retry_after: str | None = None) -> float | None:
        """Seconds to wait before retrying after failed attempt number `attempt` (1-based), or
        None when the retries or the time budget are used up."""
        if attempt > self.max_retries:
            return None
        jitter = 1 + random.random() / 4
        delay = min(BACKOFF_MAX, self.backoff_factor * 2 ** (attempt - 1) * jitter)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(BACKOFF_MAX, float(retry_after)))
        if time.monotonic() - started + delay > self.timeout:
            return None
        return delay


# --- HTTP ----------------------------------------------------------------------------------------
class HttpSession:
    """One server: base URL, pooled httpx client, MLflow's auth/TLS variables, retries, errors."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InvalidParameterError(
                f"Invalid tracking server URI {redact_uri(url)!r}: expected "
                "http(s)://host[:port][/path prefix], e.g. http://127.0.0.1:5000"
            )
        self._uri_auth = None
        if parts.username is not None:
            self._uri_auth = (unquote(parts.username), unquote(parts.password or ""))
        netloc = parts.netloc.rpartition("@")[2]
        self.base_url = urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpSession({self.base_url!r})"

    # -- client and headers ---------------------------------------------------------------------
    def client(self) -> httpx.Client:
        client = self._client
        if client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    # After a fork the parent's pooled sockets are not ours: start afresh.
                    self._client, self._pid = self._new_client(), os.getpid()
                client = self._client
        return client

    def _new_client(self) -> httpx.Client:
        timeout = _env_number(TIMEOUT_ENV, 120.0) or None  # 0: no timeout
        verify: bool | ssl.SSLContext = True
        if _env_true(INSECURE_TLS_ENV):
            verify = False
        elif os.environ.get(SERVER_CERT_ENV) or os.environ.get(CLIENT_CERT_ENV):
            context = ssl.create_default_context(cafile=os.environ.get(SERVER_CERT_ENV) or None)
            if os.environ.get(CLIENT_CERT_ENV):
                context.load_cert_chain(os.environ[CLIENT_CERT_ENV])
            verify = context
        return httpx.Client(
            timeout=httpx.Timeout(
                timeout, connect=min(timeout or CONNECT_TIMEOUT, CONNECT_TIMEOUT)
            ),
            verify=verify,
            headers={"User-Agent": "trackflow"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    def _auth_headers(self) -> dict[str, str]:
        token = os.environ.get(TOKEN_ENV)
        if token:
            return {"Authorization": f"Bearer {token}"}
        user = os.environ.get(USERNAME_ENV)
        password = os.environ.get(PASSWORD_ENV)
        credentials = (user, password or "") if user else self._uri_auth
        if credentials:
            raw = f"{credentials[0]}:{credentials[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    # -- requests -------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        headers: dict[str, str] | None = None,
        consume: Callable[[httpx.Response], T] | None = None,
    ) -> Any:
        """Send with retries; return the 2xx response (read), or `consume(response)` for a
        streamed one. `content` may be a callable giving a fresh byte iterator per attempt.
        Error answers raise TrackingError subclasses; an unreachable server, StorageError."""
        url = self.base_url + path
        policy = RetryPolicy.from_env()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            request_headers = {**self._auth_headers(), **(headers or {})}
            body = content() if callable(content) else content
            try:
                client = self.client()
                request = client.build_request(
                    method, url, params=params, content=body, headers=request_headers
                )
                response = client.send(request, stream=True)
                try:
                    status = response.status_code
                    if status in RETRY_STATUS:
                        response.read()
                        retry_after = response.headers.get("Retry-After")
                        delay = policy.delay(attempt, started, retry_after)
                        if delay is None:
                            raise self._error(response, method, path, attempt, started)
                    elif not 200 <= status < 300:
                        response.read()
                        raise self._error(response, method, path, attempt, started)
                    elif consume is not None:
                        return consume(response)
                    else:
                        response.read()
                        return response
                finally:
                    response.close()
            except httpx.TransportError as e:
                retryable = isinstance(
                    e, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
                ) and "CERTIFICATE_VERIFY_FAILED" not in str(e)
                delay = policy.delay(attempt, started) if retryable else None
                if delay is None:
                    raise self._unreachable(e, attempt, started) from e
            except httpx.RequestError as e:  # e.g. an undecodable body
                raise StorageError(f"Request {method} {redact_uri(url)} failed: {e}") from e
            time.sleep(delay)

    def _unreachable(self, exc: Exception, attempts: int, started: float) -> StorageError:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        hint = "check that the server is running and that the tracking URI is right"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            hint = (
                f"set {SERVER_CERT_ENV} to the server's CA bundle "
                f"(or {INSECURE_TLS_ENV}=true to skip verification)"
            )
        return StorageError(
            f"Cannot reach tracking server at {self.base_url}: {reason} "
            f"({attempts} attempt(s) in {time.monotonic() - started:.1f} s); {hint}"
        )

    def _error(
        self, response: httpx.Response, method: str, path: str, attempts: int, started: float
    ) -> TrackingError:
        """The TrackingError for an error answer, from MLflow's JSON error body if any."""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error_code"), str):
            code = payload["error_code"]
            message = str(payload.get("message") or code)
            return _ERROR_CLASSES.get(code, TrackingError)(message, code)
        status = response.status_code
        where = f"{method} {redact_uri(self.base_url + path)}"
        text = " ".join(response.text.split())[:300]
        if status in (401, 403):
            return TrackingError(
                f"The tracking server at {self.base_url} refused {where} (HTTP {status}); set "
                f"{TOKEN_ENV}, or {USERNAME_ENV} and {PASSWORD_ENV}",
                "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED",
            )
        if 300 <= status < 400:
            location = redact_uri(response.headers.get("Location", "elsewhere"))
            return TrackingError(
                f"{where} was redirected (HTTP {status}) to {location}; use the URL the server "
                "redirects to as the tracking URI (for example https:// instead of http://)",
                "BAD_REQUEST",
            )
        if status == 404:
            return TrackingError(
                f"{where} answered HTTP 404: is {self.base_url} an MLflow tracking server "
                "(check the URI, including any path prefix)?",
                "ENDPOINT_NOT_FOUND",
            )
        if status in RETRY_STATUS:
            return TrackingError(
                f"Tracking server at {self.base_url} answered HTTP {status} to {where} "
                f"({attempts} attempt(s) in {time.monotonic() - started:.1f} s): {text}",
                "TEMPORARILY_UNAVAILABLE" if status != 500 else "INTERNAL_ERROR",
            )
        return TrackingError(f"{where} failed with HTTP {status}: {text}", "BAD_REQUEST")

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> dict:
        """One REST API call: GET with query params or POST with a JSON body; the JSON answer."""
        if method == "GET":
            response = self.send("GET", endpoint, params=body)
        else:
            data = json.dumps(body or {}, allow_nan=False, ensure_ascii=False).encode()
            response = self.send(
                method, endpoint, content=data, headers={"Content-Type": "application/json"}
            )
        if not response.content.strip():
            return {}
        try:
            answer = response.json()
        except ValueError:
            raise TrackingError(
                f"{method} {redact_uri(self.base_url + endpoint)} did not answer JSON: "
                f"{response.text[:100]!r}; is this an MLflow tracking server?"
            ) from None
        return answer if isinstance(answer, dict) else {}


# --- JSON <-> entities ---------------------------------------------------------------------------
def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _json_float(value: float) -> float | str:
    """Protobuf JSON spelling of non-finite doubles (plain JSON has none)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _pairs(items: list[dict] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or []}


def _experiment(data: dict) -> Experiment:
    return Experiment(
        experiment_id=str(data["experiment_id"]),
        name=data.get("name", ""),
        artifact_location=data.get("artifact_location", ""),
        lifecycle_stage=data.get("lifecycle_stage", LifecycleStage.ACTIVE),
        tags=_pairs(data.get("tags")),
        creation_time=_int(data.get("creation_time")),
        last_update_time=_int(data.get("last_update_time")),
    )


def _run_info(data: dict) -> RunInfo:
    return RunInfo(
        run_id=data.get("run_id") or data["run_uuid"],
        experiment_id=str(data.get("experiment_id", "")),
        run_name=data.get("run_name", ""),
        user_id=data.get("user_id", ""),
        status=data.get("status", RunStatus.RUNNING.name),
        start_time=_int(data.get("start_time")),
        end_time=_int(data.get("end_time")),
        artifact_uri=data.get("artifact_uri", ""),
        lifecycle_stage=data.get("lifecycle_stage", LifecycleStage.ACTIVE),
    )


def _run(data: dict) -> Run:
    values = data.get("data") or {}
    metrics = {m["key"]: float(m.get("value", 0.0)) for m in values.get("metrics", [])}
    inputs, outputs = data.get("inputs") or {}, data.get("outputs") or {}
    return Run(
        _run_info(data["info"]),
        RunData(
            metrics=metrics, params=_pairs(values.get("params")), tags=_pairs(values.get("tags"))
        ),
        RunInputs(
            [
                DatasetInput(logged_models.dataset_from_dict(i["dataset"]), _pairs(i.get("tags")))
                for i in inputs.get("dataset_inputs", [])
            ],
            [str(m["model_id"]) for m in inputs.get("model_inputs", [])],
        ),
        RunOutputs(
            [
                LoggedModelOutput(str(m["model_id"]), int(m.get("step", 0)))
                for m in outputs.get("model_outputs", [])
            ]
        ),
    )


def _metric(data: dict, key: str | None = None) -> Metric:
    return Metric(
        data.get("key", key or ""),
        float(data.get("value", 0.0)),
        int(data.get("timestamp", 0)),
        int(data.get("step", 0)),
        model_id=data.get("model_id") or None,
        dataset_name=data.get("dataset_name") or None,
        dataset_digest=data.get("dataset_digest") or None,
        run_id=data.get("run_id") or None,
    )


def _logged_model(data: dict) -> LoggedModel:
    info, values = data.get("info") or {}, data.get("data") or {}
    return LoggedModel(
        experiment_id=str(info.get("experiment_id", "")),
        model_id=str(info["model_id"]),
        name=info.get("name", ""),
        artifact_location=info.get("artifact_uri", ""),
        creation_timestamp=int(info.get("creation_timestamp_ms", 0)),
        last_updated_timestamp=int(info.get("last_updated_timestamp_ms", 0)),
        model_type=info.get("model_type") or None,
        source_run_id=info.get("source_run_id") or None,
        status=LoggedModelStatus.parse(info.get("status", "LOGGED_MODEL_STATUS_UNSPECIFIED")),
        status_message=info.get("status_message") or None,
        tags=_pairs(info.get("tags")),
        params=_pairs(values.get("params")),
        metrics=[_metric(m) for m in values.get("metrics", [])],
    )


def _metric_json(metric: Metric) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": metric.key,
        "value": _json_float(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    for name in ("model_id", "dataset_name", "dataset_digest"):
        if getattr(metric, name) is not None:
            out[name] = getattr(metric, name)
    return out


def _checked_metric(metric: Metric) -> Metric:
    """`metric` with its value, timestamp and step checked (links to a model kept)."""
    return Metric(
        metric.key,
        validation.metric_value(metric.key, metric.value),
        validation.metric_timestamp(metric.key, metric.timestamp),
        validation.metric_step(metric.key, metric.step),
        model_id=metric.model_id,
        dataset_name=metric.dataset_name,
        dataset_digest=metric.dataset_digest,
    )


def _search_text(
    filter_string: str | None, order_by: list[str] | None, page_token: str | None
) -> dict[str, Any]:
    """The filter, order_by and page_token fields of a search request. The server parses
    them (its grammar may differ from ours); text no store accepts is refused here."""
    body: dict[str, Any] = {}
    if filter_string:
        body["filter"] = search.checked_text("Filter", filter_string)
    if order_by:
        body["order_by"] = [search.checked_text("order_by entry", e) for e in order_by]
    if page_token:
        body["page_token"] = page_token
    return body


def _batches(
    metrics: list[dict], params: list[dict], tags: list[dict]
) -> Iterator[tuple[list[dict], list[dict], list[dict]]]:
    """Chunks within MLflow's log-batch limits: counts per kind, total count, JSON size."""
    limits = {
        "params": validation.MAX_PARAMS_TAGS_PER_BATCH,
        "tags": validation.MAX_PARAMS_TAGS_PER_BATCH,
        "metrics": validation.MAX_METRICS_PER_BATCH,
    }
    queues = {"params": deque(params), "tags": deque(tags), "metrics": deque(metrics)}
    while any(queues.values()):
        chunk: dict[str, list[dict]] = {kind: [] for kind in queues}
        size = count = 0
        for kind, queue in queues.items():
            while (
                queue
                and len(chunk[kind]) < limits[kind]
                and count < validation.MAX_ENTITIES_PER_BATCH
            ):
                cost = len(json.dumps(queue[0], ensure_ascii=False)) + 1
                if count and size + cost > BATCH_JSON_LIMIT:
                    break
                chunk[kind].append(queue.popleft())
                size += cost
                count += 1
        yield chunk["metrics"], chunk["params"], chunk["tags"]


# --- the store -----------------------------------------------------------------------------------
class RestStore(TrackingStore):
    """Experiments and runs on a tracking server, over MLflow's REST API."""

    def __init__(self, uri: str, artifact_root: str | None = None) -> None:
        self.uri = uri
        self._http = HttpSession(uri)
        #: "" means: the server chooses experiment artifact locations.
        self.artifact_root = artifact_root.rstrip("/") if artifact_root else ""
        self._run_ids: dict[str, str] = {}  # requested run id -> the server's run id
        self._server_keeps_run_ids: bool | None = None  # learnt from the first create_run

    def __repr__(self) -> str:
        return f"RestStore({self._http.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self._http.close()

    def _get(self, endpoint: str, params: dict[str, Any]) -> dict:
        return self._http.call("GET", f"{API}/{endpoint}", params)

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict:
        return self._http.call("POST", f"{API}/{endpoint}", body)

    # --- experiments -------------------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        validation.experiment_name(name)
        validation.no_key_clash("Experiment tag", tags or {})
        body: dict[str, Any] = {
            "name": name,
            "tags": [
                {"key": k, "value": validation.experiment_tag_value(k, v)}
                for k, v in (tags or {}).items()
            ],
        }
        if artifact_location:
            body["artifact_location"] = validation.artifact_location(artifact_location)
        elif self.artifact_root:
            body["artifact_location"] = f"{self.artifact_root}/{uuid.uuid4().hex}"
        return str(self._post("experiments/create", body)["experiment_id"])

    def get_experiment(self, experiment_id: str) -> Experiment:
        experiment_id = validation.experiment_id(experiment_id)
        return _experiment(
            self._get("experiments/get", {"experiment_id": experiment_id})["experiment"]
        )

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        if not validation.is_text(name):  # no store holds such a name
            return None
        try:
            answer = self._get("experiments/get-by-name", {"experiment_name": name})
        except NotFoundError:
            return None
        return _experiment(answer["experiment"])

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        body: dict[str, Any] = {
            "view_type": ViewType.parse(view_type).name,
            "max_results": check_max_results(max_results),
        }
        body.update(_search_text(filter_string, order_by, page_token))
        answer = self._post("experiments/search", body)
        experiments = [_experiment(e) for e in answer.get("experiments", [])]
        return PagedList(experiments, answer.get("next_page_token") or None)

    def _all_experiment_ids(self) -> list[str]:
        experiments = all_pages(
            lambda token: self.search_experiments(
                ViewType.ALL, SEARCH_MAX_RESULTS_DEFAULT, None, None, token
            )
        )
        return [e.experiment_id for e in experiments]

    def delete_experiment(self, experiment_id: str) -> None:
        experiment_id = validation.experiment_id(experiment_id)
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterError("The Default experiment (id 0) cannot be deleted")
        self._post("experiments/delete", {"experiment_id": experiment_id})

    def restore_experiment(self, experiment_id: str) -> None:
        experiment_id = validation.experiment_id(experiment_id)
        self._post("experiments/restore", {"experiment_id": experiment_id})

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        validation.experiment_name(new_name)
        experiment_id = validation.experiment_id(experiment_id)
        self._post("experiments/update", {"experiment_id": experiment_id, "new_name": new_name})

    def set_experiment_tag(self, experiment_id: str, tag: RunTag) -> None:
        value = validation.experiment_tag_value(tag.key, tag.value)
        body = {"experiment_id": validation.experiment_id(experiment_id), "key": tag.key}
        self._post("experiments/set-experiment-tag", {**body, "value": value})

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        validation.validate_key(key, "Experiment tag key")
        body = {"experiment_id": validation.experiment_id(experiment_id), "key": key}
        self._post("experiments/delete-experiment-tag", body)

    # --- run ids -----------------------------------------------------------------------------
    def _on_run(self, run_id: str, call: Callable[[str], T]) -> T:
        """`call(server id)` for `run_id`, translating a requested id (see the module doc)."""
        actual = self._run_ids.get(run_id)
        if actual is not None:
            return call(actual)
        validation.run_id(run_id)
        try:
            return call(run_id)
        except NotFoundError:
            if self._server_keeps_run_ids:
                raise
            actual = self._find_requested_run(run_id)
            if actual is None or actual == run_id:
                raise
        return call(actual)

    def _find_requested_run(
        self, requested: str, experiment_ids: list[str] | None = None
    ) -> str | None:
        """The server's id of the run created for `requested` (by its tag), or None."""
        ids = experiment_ids if experiment_ids is not None else self._all_experiment_ids()
        where = f"tags.`{REQUESTED_RUN_ID_TAG}` = '{validation.run_id(requested)}'"
        for start in range(0, len(ids), EXPERIMENT_IDS_PER_SEARCH):
            chunk = ids[start : start + EXPERIMENT_IDS_PER_SEARCH]
            found = self.search_runs(chunk, where, ViewType.ALL, 1)
            if found:
                self._run_ids[requested] = found[0].info.run_id
                return found[0].info.run_id
        return None

    def _check_run_id_free(self, run_id: str, experiment_id: str) -> None:
        taken = run_id in self._run_ids
        if not taken and self._server_keeps_run_ids is None:
            try:
                self._get("runs/get", {"run_id": run_id, "run_uuid": run_id})
                taken = True
            except NotFoundError:
                pass
        if not taken and self._server_keeps_run_ids is not True:
            taken = self._find_requested_run(run_id, [experiment_id]) is not None
        if taken:
            raise AlreadyExistsError(f"Run {run_id!r} already exists")

    @property
    def keeps_requested_run_ids(self) -> bool:
        """True once a create_run showed that the server honours chosen ids (MLflow's does not)."""
        return self._server_keeps_run_ids is True

    # --- runs --------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: list[RunTag],
        run_name: str,
        run_id: str | None = None,
    ) -> Run:
        experiment_id = validation.experiment_id(experiment_id)
        validation.new_run_tags(user_id or "", start_time, run_name, tags)
        body: dict[str, Any] = {
            "experiment_id": experiment_id,
            "user_id": user_id or "",
            "start_time": start_time,
            "tags": [{"key": t.key, "value": validation.tag_value(t.key, t.value)} for t in tags],
        }
        if run_name:
            body["run_name"] = run_name
        tagged = False
        if run_id:
            validation.run_id(run_id)
            self._check_run_id_free(run_id, experiment_id)
            body["run_id"] = run_id
            if self._server_keeps_run_ids is not True:
                body["tags"].append({"key": REQUESTED_RUN_ID_TAG, "value": run_id})
                tagged = True
        run = _run(self._post("runs/create", body)["run"])
        if run_id and run.info.run_id == run_id:
            self._server_keeps_run_ids = True
            if tagged:  # the server honours chosen ids: the lookup tag is not needed
                with contextlib.suppress(TrackingError):
                    self._post("runs/delete-tag", {"run_id": run_id, "key": REQUESTED_RUN_ID_TAG})
                    run.data.tags.pop(REQUESTED_RUN_ID_TAG, None)
        elif run_id:
            self._server_keeps_run_ids = False
            self._run_ids[run_id] = run.info.run_id
        return run

    def get_run(self, run_id: str) -> Run:
        return self._on_run(
            run_id, lambda rid: _run(self._get("runs/get", {"run_id": rid, "run_uuid": rid})["run"])
        )

    def update_run_info(
        self,
        run_id: str,
        run_status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        body: dict[str, Any] = {}
        if run_status is not None:
            body["status"] = RunStatus.parse(run_status).name
        if end_time is not None:
            body["end_time"] = validation.time_ms("Run end_time", end_time)
        if run_name:
            body["run_name"] = validation.run_name(run_name)

        def update(rid: str) -> RunInfo:
            answer = self._post("runs/update", {"run_id": rid, "run_uuid": rid, **body})
            return _run_info(answer["run_info"])

        return self._on_run(run_id, update)

    def delete_run(self, run_id: str) -> None:
        self._on_run(run_id, lambda rid: self._post("runs/delete", {"run_id": rid}))

    def restore_run(self, run_id: str) -> None:
        self._on_run(run_id, lambda rid: self._post("runs/restore", {"run_id": rid}))

    def log_metric(self, run_id: str, metric: Metric) -> None:
        body = _metric_json(_checked_metric(metric))
        self._on_run(
            run_id,
            lambda rid: self._post("runs/log-metric", {"run_id": rid, "run_uuid": rid, **body}),
        )

    def log_param(self, run_id: str, param: Param) -> None:
        body = {"key": param.key, "value": validation.param_value(param.key, param.value)}
        self._on_run(
            run_id,
            lambda rid: self._post("runs/log-parameter", {"run_id": rid, "run_uuid": rid, **body}),
        )

    def set_tag(self, run_id: str, tag: RunTag) -> None:
        body = {"key": tag.key, "value": validation.tag_value(tag.key, tag.value)}
        self._on_run(
            run_id, lambda rid: self._post("runs/set-tag", {"run_id": rid, "run_uuid": rid, **body})
        )

    def delete_tag(self, run_id: str, key: str) -> None:
        validation.validate_key(key, "Tag key")
        self._on_run(run_id, lambda rid: self._post("runs/delete-tag", {"run_id": rid, "key": key}))

    def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[RunTag]
    ) -> None:
        """Validate everything (within MLflow's per-batch limits, as every store: log_all
        splits bigger ones), then send it, in more than one request only when the JSON body
        would outgrow the server's request limit."""
        validation.batch_sizes(len(metrics), len(params), len(tags))
        metric_items = [_metric_json(_checked_metric(m)) for m in metrics]
        new_params: dict[str, str] = {}
        for p in params:  # MLflow rejects repeated keys even with equal values: send each once
            value = validation.param_value(p.key, p.value)
            if new_params.setdefault(p.key, value) != value:
                raise validation.param_conflict(run_id, p.key, new_params[p.key], value)
        new_tags = {t.key: validation.tag_value(t.key, t.value) for t in tags}  # last one wins
        validation.no_key_clash("Param", new_params)
        validation.no_key_clash("Tag", new_tags)
        validation.no_key_clash("Metric", {m.key for m in metrics})
        param_items = [{"key": k, "value": v} for k, v in new_params.items()]
        tag_items = [{"key": k, "value": v} for k, v in new_tags.items()]
        if not (metric_items or param_items or tag_items):
            return
        chunks = list(_batches(metric_items, param_items, tag_items))

        def send(rid: str) -> None:
            for chunk_metrics, chunk_params, chunk_tags in chunks:
                self._post(
                    "runs/log-batch",
                    {
                        "run_id": rid,
                        "metrics": chunk_metrics,
                        "params": chunk_params,
                        "tags": chunk_tags,
                    },
                )

        # A missing run fails the first chunk, so a translated retry never repeats a chunk.
        self._on_run(run_id, send)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        validation.validate_key(key, "Metric key")

        def history(rid: str) -> list[Metric]:
            points: list[Metric] = []
            token = None
            while True:
                params = {"run_id": rid, "run_uuid": rid, "metric_key": key}
                if token:
                    params["page_token"] = token
                answer = self._get("metrics/get-history", params)
                points.extend(_metric(m, key) for m in answer.get("metrics", []))
                token = answer.get("next_page_token")
                if not token:
                    return points

        return self._on_run(run_id, history)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        run_view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        body: dict[str, Any] = {
            "experiment_ids": [str(i) for i in experiment_ids],
            "run_view_type": ViewType.parse(run_view_type).name,
            "max_results": check_max_results(max_results),
        }
        body.update(_search_text(filter_string, order_by, page_token))
        answer = self._post("runs/search", body)
        runs = [_run(r) for r in answer.get("runs", [])]
        return PagedList(runs, answer.get("next_page_token") or None)

    # --- dataset inputs and model outputs -----------------------------------------------------
    def log_inputs(
        self, run_id: str, datasets: list[DatasetInput], models: list[str] | None = None
    ) -> None:
        items = [
            {
                "tags": [{"key": k, "value": v} for k, v in item.tags.items()],
                "dataset": {
                    key: value for key, value in vars(item.dataset).items() if value is not None
                },
            }
            for item in logged_models.checked_dataset_inputs(datasets)
        ]
        body = {"datasets": items, "models": [{"model_id": m} for m in models or []]}
        self._on_run(run_id, lambda rid: self._post("runs/log-inputs", {"run_id": rid, **body}))

    def log_outputs(self, run_id: str, models: list[LoggedModelOutput]) -> None:
        items = [
            {"model_id": m.model_id, "step": validation.metric_step("step", m.step)} for m in models
        ]
        self._on_run(
            run_id, lambda rid: self._post("runs/outputs", {"run_id": rid, "models": items})
        )

    def search_datasets(self, experiment_ids: list[str]) -> list[DatasetSummary]:
        body = {"experiment_ids": [str(i) for i in experiment_ids]}
        answer = self._http.call("POST", f"{AJAX_API}/experiments/search-datasets", body)
        return [
            DatasetSummary(
                str(d.get("experiment_id", "")),
                d.get("name", ""),
                d.get("digest", ""),
                d.get("context"),
            )
            for d in answer.get("dataset_summaries", [])
        ]

    # --- logged models ------------------------------------------------------------------------
    def _model_endpoint(self, model_id: str, suffix: str = "") -> str:
        return f"{API}/logged-models/{quote(str(model_id), safe='')}{suffix}"

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        body: dict[str, Any] = {
            "experiment_id": str(experiment_id),
            "tags": [{"key": k, "value": v} for k, v in logged_models.checked_tags(tags).items()],
            "params": [
                {"key": k, "value": v} for k, v in logged_models.checked_params(params).items()
            ],
        }
        for field, value in (
            ("name", logged_models.model_name(name)),
            ("source_run_id", source_run_id),
            ("model_type", model_type),
        ):
            if value:
                body[field] = value
        return _logged_model(self._post("logged-models", body)["model"])

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        params = {"allow_deleted": "true"} if allow_deleted else None
        return _logged_model(
            self._http.call("GET", self._model_endpoint(model_id), params)["model"]
        )

    def finalize_logged_model(self, model_id: str, status: LoggedModelStatus) -> LoggedModel:
        try:
            checked = LoggedModelStatus.parse(status)
        except ValueError as e:
            raise InvalidParameterError(str(e)) from None
        body = {"model_id": model_id, "status": checked.proto_name}
        return _logged_model(
            self._http.call("PATCH", self._model_endpoint(model_id), body)["model"]
        )

    def delete_logged_model(self, model_id: str) -> None:
        self._http.call("DELETE", self._model_endpoint(model_id))

    def set_logged_model_tags(self, model_id: str, tags: dict[str, str]) -> None:
        items = [{"key": k, "value": v} for k, v in logged_models.checked_tags(tags).items()]
        self._http.call("PATCH", self._model_endpoint(model_id, "/tags"), {"tags": items})

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        validation.validate_key(key, "Tag key")
        suffix = f"/tags/{quote(key, safe='')}"
        self._http.call("DELETE", self._model_endpoint(model_id, suffix))

    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        items = [{"key": k, "value": v} for k, v in logged_models.checked_params(params).items()]
        body = {"model_id": model_id, "params": items}
        self._http.call("POST", self._model_endpoint(model_id, "/params"), body)

    def search_logged_models(
        self,
        experiment_ids: list[str],
        filter_string: str | None = None,
        datasets: list[dict[str, str]] | None = None,
        max_results: int | None = None,
        order_by: list[dict[str, object]] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        body: dict[str, Any] = {"experiment_ids": [str(i) for i in experiment_ids]}
        if filter_string:
            body["filter"] = search.checked_text("Filter", filter_string)
        if datasets:
            body["datasets"] = [
                {k: v for k, v in vars(d).items() if v is not None}
                for d in logged_models.dataset_filters(datasets)
            ]
        if max_results is not None:
            body["max_results"] = check_max_results(max_results)
        if order_by:
            logged_models.model_orders(order_by)
            body["order_by"] = [{k: v for k, v in o.items() if v is not None} for o in order_by]
        if page_token:
            body["page_token"] = page_token
        answer = self._post("logged-models/search", body)
        models = [_logged_model(m) for m in answer.get("models", [])]
        return PagedList(models, answer.get("next_page_token") or None)


# --- artifacts through the server's proxy --------------------------------------------------------
def split_proxy_uri(uri: str, tracking_uri: str | None = None) -> tuple[str, str]:
    """(server base URL, path below the proxy root) of an artifact-proxy URI.

    ``mlflow-artifacts:/1/<run>/artifacts`` is resolved against the tracking URI, as MLflow's
    client does (``mlflow-artifacts://host:port/...`` names another host on the same scheme);
    ``http(s)://host/[prefix]/api/2.0/mlflow-artifacts/artifacts/...`` names the server itself.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "mlflow-artifacts":
        if tracking_uri is None:
            from tracking import config

            tracking_uri = config.get_tracking_uri()
        tracking = urlsplit(tracking_uri)
        if tracking.scheme.lower() not in ("http", "https"):
            raise InvalidParameterError(
                f"Artifact URI {uri!r} is served by an MLflow tracking server, but the tracking "
                f"URI is {redact_uri(tracking_uri)!r}. Point the tracking URI at that server: "
                "tracking.set_tracking_uri('http://host:5000') or MLFLOW_TRACKING_URI"
            )
        netloc = parts.netloc or tracking.netloc
        base = urlunsplit((tracking.scheme.lower(), netloc, tracking.path.rstrip("/"), "", ""))
        return base, unquote(parts.path).strip("/")
    if scheme in ("http", "https"):
        prefix, found, tail = parts.path.partition(ARTIFACTS_API)
        if found and (not tail or tail.startswith("/")):
            base = urlunsplit((scheme, parts.netloc, prefix.rstrip("/"), "", ""))
            return base, unquote(tail).strip("/")
    raise InvalidParameterError(
        f"{redact_uri(uri)!r} is not an artifact proxy URI: expected mlflow-artifacts:/<path> or "
        f"http(s)://<server>{ARTIFACTS_API}/<path>"
    )


class ProxyArtifactFileSystem(AbstractFileSystem):
    """fsspec view of a tracking server's artifact proxy; paths are relative to its root.

    Uploads and downloads stream in 1 MiB chunks (never a whole file in memory), with the
    REST store's retries, auth and TLS settings.
    """

    protocol = ("mlflow-artifacts",)
    root_marker = ""
    cachable = False

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.session = HttpSession(self.base_url)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = str(path)
        if text.lower().startswith("mlflow-artifacts:"):
            text = text.split(":", 1)[1]
        return text.strip("/")

    @staticmethod
    def _endpoint(path: str) -> str:
        path = path.strip("/")
        return f"{ARTIFACTS_API}/{quote(path, safe='/')}" if path else ARTIFACTS_API

    @contextlib.contextmanager
    def _missing_as_fnf(self, path: str) -> Iterator[None]:
        try:
            yield
        except NotFoundError:
            raise FileNotFoundError(path) from None

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        params = {"path": path} if path else None
        answer = self.session.call("GET", ARTIFACTS_API, params)
        entries = []
        for item in answer.get("files", []):
            name = posixpath.basename(str(item.get("path", "")).rstrip("/"))
            if name in ("", ".", ".."):
                continue  # never let a listing point outside the listed folder
            is_dir = bool(item.get("is_dir"))
            size = item.get("file_size")
            entries.append(
                {
                    "name": f"{path}/{name}" if path else name,
                    "type": "directory" if is_dir else "file",
                    "size": None if is_dir else int(size or 0),
                }
            )
        entries.sort(key=lambda e: str(e["name"]))
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "type": "directory", "size": None}
        for entry in self.ls(path.rpartition("/")[0]):
            if entry["name"] == path:
                return entry
        raise FileNotFoundError(path)

    def find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        **kwargs: Any,
    ) -> Any:
        path = self._strip_protocol(path)
        found: dict[str, dict[str, Any]] = {}
        folders = [(path, 1)]
        while folders:
            folder, depth = folders.pop()
            for entry in self.ls(folder):
                if entry["type"] == "directory":
                    if withdirs:
                        found[entry["name"]] = entry
                    if maxdepth is None or depth < maxdepth:
                        folders.append((entry["name"], depth + 1))
                else:
                    found[entry["name"]] = entry
        if not found and path:
            with contextlib.suppress(FileNotFoundError):
                entry = self.info(path)
                if entry["type"] == "file":
                    found[path] = entry
        names = sorted(found)
        return {n: found[n] for n in names} if detail else names

    def put_file(self, lpath: str, rpath: str, callback: Any = None, **kwargs: Any) -> None:
        size = os.path.getsize(lpath)

        def chunks() -> Iterator[bytes]:
            with open(lpath, "rb") as f:
                while block := f.read(CHUNK_SIZE):
                    yield block

        headers = {"Content-Type": _mime_type(rpath), "Content-Length": str(size)}
        self.session.send("PUT", self._endpoint(rpath), content=chunks, headers=headers)

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        headers = {"Content-Type": _mime_type(path)}
        self.session.send("PUT", self._endpoint(path), content=bytes(value), headers=headers)

    def get_file(self, rpath: str, lpath: str, callback: Any = None, **kwargs: Any) -> None:
        opened = False

        def save(response: httpx.Response) -> None:
            nonlocal opened
            opened = True
            with open(lpath, "wb") as f:  # truncates: a retried download starts over
                for block in response.iter_bytes(CHUNK_SIZE):
                    f.write(block)

        try:
            with self._missing_as_fnf(rpath):
                self.session.send("GET", self._endpoint(rpath), consume=save)
        except BaseException:
            if opened:
                with contextlib.suppress(OSError):
                    os.unlink(lpath)
            raise

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        with self._missing_as_fnf(path):
            data = self.session.send("GET", self._endpoint(path)).content
        return data[start:end]

    def rm_file(self, path: str) -> None:
        path = self._strip_protocol(path)
        if not path:
            raise InvalidParameterError("Refusing to delete the root of the artifact proxy")
        with self._missing_as_fnf(path):
            self.session.call("DELETE", self._endpoint(path))

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Delete files or folders (the server deletes a folder with everything below it)."""
        for item in [path] if isinstance(path, str) else list(path):
            self.rm_file(item)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Folders exist implicitly, through the files below them."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Folders exist implicitly, through the files below them."""


def _mime_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


_proxy_filesystems: dict[str, ProxyArtifactFileSystem] = {}
_proxy_lock = threading.Lock()


def proxy_filesystem(
    uri: str, tracking_uri: str | None = None
) -> tuple[ProxyArtifactFileSystem, str]:
    """The (cached, one per server) filesystem of an artifact-proxy URI and the URI's root path."""
    base, root = split_proxy_uri(uri, tracking_uri)
    with _proxy_lock:
        fs = _proxy_filesystems.get(base)
        if fs is None:
            fs = _proxy_filesystems[base] = ProxyArtifactFileSystem(base)
    return fs, root

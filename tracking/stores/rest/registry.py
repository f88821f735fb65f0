"""The REST registry: the model registry of an MLflow-compatible tracking server.

An http(s) registry URI (by default: the tracking URI) selects this store. It speaks MLflow's
registry API (``/api/2.0/mlflow/registered-models/...`` and ``/model-versions/...``, the shapes
of ``model_registry.proto``), so it works against Trackflow's server and a stock
``mlflow server`` alike. Transport, retries, auth, TLS and error mapping are the REST tracking
store's (tracking.stores.rest.store.HttpSession): NotFoundError for RESOURCE_DOES_NOT_EXIST,
AlreadyExistsError for RESOURCE_ALREADY_EXISTS, InvalidParameterError for
INVALID_PARAMETER_VALUE. Names, versions, tags, stages and aliases are checked here first, by the
rules of the other registry stores, so bad input fails before any request.

Download URIs: a version whose source is on the server's artifact proxy
(``mlflow-artifacts:/...``) is downloaded from the proxy of the registry's server
(``http(s)://<server>/api/2.0/mlflow-artifacts/artifacts/...``), which is what the source means
there; ``get_model_version_download_uri`` returns that URL (without any credentials of the
registry URI: give those in MLFLOW_TRACKING_TOKEN / _USERNAME / _PASSWORD), so loading a
registered model does not depend on the current tracking URI. Registering such a URL of the same
server (``register_model("models:/...")`` does) sends its ``mlflow-artifacts:/`` form again, the
only form a server accepts for sources in a run's proxied artifacts.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from tracking.errors import NotFoundError
from tracking.registry import search
from tracking.registry import validation as check
from tracking.registry.base import RegistryStore
from tracking.registry.entities import (
    STAGE_NONE,
    STATUS_READY,
    ModelVersion,
    RegisteredModel,
    canonical_stage,
)
from tracking.stores.base import PagedList, all_pages
from tracking.stores.rest.store import API, ARTIFACTS_API, HttpSession
from tracking.uris import uri_scheme

__all__ = ["RestRegistryStore"]

RM = f"{API}/registered-models"
MV = f"{API}/model-versions"
#: ModelVersionStatus enum numbers, should a server send numbers instead of names.
_STATUS_NAMES = {1: "PENDING_REGISTRATION", 2: "FAILED_REGISTRATION", 3: "READY"}
_PAGE_SIZE = 1000


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _pairs(items: list[dict[str, Any]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or []}


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _model_version(data: dict[str, Any]) -> ModelVersion:
    status = data.get("status") or STATUS_READY
    return ModelVersion(
        name=data["name"],
        version=int(data["version"]),
        creation_timestamp=_int(data.get("creation_timestamp")),
        last_updated_timestamp=_int(data.get("last_updated_timestamp")),
        current_stage=data.get("current_stage") or STAGE_NONE,
        description=data.get("description"),
        source=data.get("source"),
        run_id=data.get("run_id") or None,
        run_link=data.get("run_link"),
        status=_STATUS_NAMES.get(status, str(status)) if isinstance(status, int) else status,
        status_message=data.get("status_message"),
        user_id=data.get("user_id"),
        tags=_pairs(data.get("tags")),
        aliases=list(data.get("aliases") or []),
    )


def _registered_model(data: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=data["name"],
        creation_timestamp=_int(data.get("creation_timestamp")),
        last_updated_timestamp=_int(data.get("last_updated_timestamp")),
        description=data.get("description"),
        tags=_pairs(data.get("tags")),
        aliases={a["alias"]: int(a["version"]) for a in data.get("aliases") or []},
        latest_versions=[_model_version(v) for v in data.get("latest_versions") or []],
    )


def _quoted(text: str) -> str:
    return text.replace("'", "''")


class RestRegistryStore(RegistryStore):
    """Registered models and versions on a tracking server, over MLflow's registry REST API."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._http = HttpSession(uri)

    def __repr__(self) -> str:
        return f"RestRegistryStore({self._http.base_url!r})"

    def close(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self._http.close()

    def _call(self, method: str, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in body.items() if v is not None}
        return self._http.call(method, endpoint, fields)

    # --- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        body = {
            "name": check.model_name(name),
            "tags": _tag_list(check.tags(tags, "Registered model")),
            "description": check.description(description),
        }
        answer = self._call("POST", f"{RM}/create", body)
        return _registered_model(answer["registered_model"])

    def get_registered_model(self, name: str) -> RegisteredModel:
        answer = self._call("GET", f"{RM}/get", {"name": check.model_name(name)})
        return _registered_model(answer["registered_model"])

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        body = {"name": check.model_name(name), "description": check.description(description)}
        answer = self._call("PATCH", f"{RM}/update", body)
        return _registered_model(answer["registered_model"])

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        body = {"name": check.model_name(name), "new_name": check.model_name(new_name)}
        answer = self._call("POST", f"{RM}/rename", body)
        return _registered_model(answer["registered_model"])

    def delete_registered_model(self, name: str) -> None:
        self._call("DELETE", f"{RM}/delete", {"name": check.model_name(name)})

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        key, value = check.tag(key, value, "Registered model")
        body = {"name": check.model_name(name), "key": key, "value": value}
        self._call("POST", f"{RM}/set-tag", body)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        check.tag(key, "", "Registered model")
        self._call("DELETE", f"{RM}/delete-tag", {"name": check.model_name(name), "key": key})

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = search.SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        limit = search.check_max_results(
            max_results, search.SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
        )
        params = {
            "filter": filter_string or None,
            "max_results": limit,
            "order_by": [order_by] if isinstance(order_by, str) else list(order_by or []) or None,
            "page_token": page_token or None,
        }
        answer = self._call("GET", f"{RM}/search", params)
        models = [_registered_model(m) for m in answer.get("registered_models") or []]
        return PagedList(models, answer.get("next_page_token") or None)

    def _list_models(self, name: str | None = None) -> list[RegisteredModel]:
        if name is not None:
            try:
                return [self.get_registered_model(name)]
            except NotFoundError:
                return []
        return list(
            all_pages(lambda token: self.search_registered_models(None, _PAGE_SIZE, None, token))
        )

    # --- model versions ------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        body = {
            "name": check.model_name(name),
            "source": self._source_to_send(source),
            "run_id": run_id or None,
            "tags": _tag_list(check.tags(tags, "Model version")),
            "run_link": run_link or None,
            "description": check.description(description),
        }
        answer = self._call("POST", f"{MV}/create", body)
        return _model_version(answer["model_version"])

    def _version_body(self, name: str, version: int | str) -> dict[str, Any]:
        return {"name": check.model_name(name), "version": str(check.version(version))}

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        answer = self._call("GET", f"{MV}/get", self._version_body(name, version))
        return _model_version(answer["model_version"])

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        body = {**self._version_body(name, version), "description": check.description(description)}
        answer = self._call("PATCH", f"{MV}/update", body)
        return _model_version(answer["model_version"])

    def delete_model_version(self, name: str, version: int | str) -> None:
        self._call("DELETE", f"{MV}/delete", self._version_body(name, version))

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        key, value = check.tag(key, value, "Model version")
        body = {**self._version_body(name, version), "key": key, "value": value}
        self._call("POST", f"{MV}/set-tag", body)

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        check.tag(key, "", "Model version")
        body = {**self._version_body(name, version), "key": key}
        self._call("DELETE", f"{MV}/delete-tag", body)

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        body = {
            **self._version_body(name, version),
            "stage": canonical_stage(stage),
            "archive_existing_versions": bool(archive_existing_versions),
        }
        answer = self._call("POST", f"{MV}/transition-stage", body)
        return _model_version(answer["model_version"])

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = search.SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        limit = search.check_max_results(
            max_results, search.SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD
        )
        params = {
            "filter": filter_string or None,
            "max_results": limit,
            "order_by": [order_by] if isinstance(order_by, str) else list(order_by or []) or None,
            "page_token": page_token or None,
        }
        answer = self._call("GET", f"{MV}/search", params)
        versions = [_model_version(v) for v in answer.get("model_versions") or []]
        return PagedList(versions, answer.get("next_page_token") or None)

    def _list_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        clauses = []
        if name is not None:
            self.get_registered_model(name)  # NotFoundError for a missing model
            clauses.append(f"name = '{_quoted(name)}'")
        if run_id is not None:
            clauses.append(f"run_id = '{_quoted(run_id)}'")
        filter_string = " AND ".join(clauses) or None
        versions = all_pages(
            lambda token: self.search_model_versions(filter_string, _PAGE_SIZE, None, token)
        )
        return sorted(versions, key=lambda mv: (mv.name, mv.version))

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        if isinstance(stages, str):
            stages = [stages]
        body = {
            "name": check.model_name(name),
            "stages": [canonical_stage(s) for s in stages] if stages else None,
        }
        answer = self._call("POST", f"{RM}/get-latest-versions", body)
        return [_model_version(v) for v in answer.get("model_versions") or []]

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        answer = self._call("GET", f"{MV}/get-download-uri", self._version_body(name, version))
        return self._proxy_url(str(answer.get("artifact_uri") or ""))

    def _proxy_url(self, uri: str) -> str:
        """``mlflow-artifacts:[//host]/<path>`` as the URL of that proxy (this server's unless
        the URI names another host); other URIs unchanged. No credentials go in the URL."""
        if uri_scheme(uri) != "mlflow-artifacts":
            return uri
        parts = urlsplit(uri)
        base = urlsplit(self._http.base_url)
        netloc = parts.netloc.rpartition("@")[2] or base.netloc
        root = urlunsplit((base.scheme, netloc, base.path, "", ""))
        return f"{root}{ARTIFACTS_API}/{quote(unquote(parts.path).strip('/'), safe='/')}"

    def _source_to_send(self, source: str) -> str:
        """The inverse of _proxy_url for this server's own proxy URLs, so a source read from
        get_model_version_download_uri registers as the server recorded it."""
        prefix = f"{self._http.base_url}{ARTIFACTS_API}/"
        if isinstance(source, str) and source.startswith(prefix):
            return "mlflow-artifacts:/" + unquote(source[len(prefix) :])
        return source

    # --- aliases -------------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        body = {
            **self._version_body(name, version),
            "alias": check.alias(alias, for_setting=True),
        }
        self._call("POST", f"{RM}/alias", body)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        body = {"name": check.model_name(name), "alias": check.alias(alias)}
        self._call("DELETE", f"{RM}/alias", body)

    def _aliases(self, name: str) -> dict[str, int]:
        return self.get_registered_model(name).aliases

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version `alias` points at; 'latest' is the newest version (also on servers
        that know no @latest)."""
        body = {"name": check.model_name(name), "alias": check.alias(alias)}
        try:
            answer = self._call("GET", f"{RM}/alias", body)
        except NotFoundError:
            if alias.lower() != check.RESERVED_ALIAS_LATEST:
                raise
            with contextlib.suppress(NotFoundError):
                versions = self._list_versions(name)
                if versions:
                    return max(versions, key=lambda mv: mv.version)
            raise
        return _model_version(answer["model_version"])

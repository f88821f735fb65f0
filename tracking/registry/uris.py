"""Model URIs, resolved to where the model's files are.

    runs:/<run_id>/<path>        a model logged in a run's artifacts
    models:/<name>/<version>     a registered version (a number)
    models:/<name>/<stage>       the newest version in None, Staging, Production or Archived
    models:/<name>/latest        the newest version
    models:/<name>@<alias>       the version an alias points at (@latest: the newest)
    models:/<model_id>           an MLflow 3 LoggedModel (m-<32 hex>), at its artifact location
    a path, file://, s3://, ...  the model folder itself

`resolve_model_uri` gives the artifact location; `download_model` a local folder holding the
model's files (local models are used in place, not copied).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tracking.errors import InvalidParameterError, NotFoundError
from tracking.logged_models import is_model_id
from tracking.registry.entities import ALL_STAGES, ModelVersion, canonical_stage
from tracking.uris import local_path, uri_scheme

if TYPE_CHECKING:
    from tracking.client import TrackingClient

_MODELS_FORMS = (
    "models:/<name>/<version>, models:/<name>/<stage> (one of "
    f"{', '.join(ALL_STAGES)}), models:/<name>/latest, models:/<name>@<alias> or "
    "models:/<model_id> (a LoggedModel id, m-<32 hex digits>)"
)
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI; `scheme` is "runs", "models", "" (local path) or an fsspec scheme."""

    uri: str
    scheme: str
    run_id: str | None = None
    path: str = ""
    name: str | None = None
    version: int | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False
    #: a LoggedModel's id (models:/m-...)
    model_id: str | None = None


def parse_model_uri(model_uri: str | os.PathLike[str]) -> ModelUri:
    """Split a model URI into its parts; InvalidParameterError naming the accepted forms."""
    uri = os.fspath(model_uri)
    if not isinstance(uri, str) or not uri:
        raise InvalidParameterError(f"A model URI must be a non-empty string, got {uri!r}")
    scheme = uri_scheme(uri)
    if scheme == "runs":
        run_id, _, path = uri[len("runs:") :].lstrip("/").partition("/")
        if not run_id:
            raise InvalidParameterError(
                f"Invalid runs URI {uri!r}: expected runs:/<run_id>/<path to the model>"
            )
        return ModelUri(uri, scheme, run_id=run_id, path=path.strip("/"))
    if scheme == "models":
        return _parse_models_uri(uri)
    return ModelUri(uri, scheme)


def _parse_models_uri(uri: str) -> ModelUri:
    body = uri[len("models:") :].lstrip("/")
    if "/" in body:
        name, _, ref = body.partition("/")
        ref = ref.strip("/")
        if not name or not ref or "/" in ref:
            raise InvalidParameterError(f"Invalid model URI {uri!r}: expected {_MODELS_FORMS}")
        if ref.isdigit():
            return ModelUri(uri, "models", name=name, version=int(ref))
        if ref.lower() == "latest":
            return ModelUri(uri, "models", name=name, latest=True)
        try:
            stage = canonical_stage(ref)
        except InvalidParameterError:
            raise InvalidParameterError(
                f"Invalid model URI {uri!r}: {ref!r} is neither a version number, a stage "
                f"({', '.join(ALL_STAGES)}) nor 'latest'; expected {_MODELS_FORMS}"
            ) from None
        return ModelUri(uri, "models", name=name, stage=stage)
    if "@" in body:
        name, _, alias = body.rpartition("@")
        if not name or not alias:
            raise InvalidParameterError(f"Invalid model URI {uri!r}: expected {_MODELS_FORMS}")
        return ModelUri(uri, "models", name=name, alias=alias)
    if is_model_id(body):
        return ModelUri(uri, "models", model_id=body)
    raise InvalidParameterError(f"Invalid model URI {uri!r}: expected {_MODELS_FORMS}")


def model_version_for(model_uri: str | ModelUri, client: TrackingClient) -> ModelVersion:
    """The registered version a models:/ URI names."""
    parsed = model_uri if isinstance(model_uri, ModelUri) else parse_model_uri(model_uri)
    if parsed.scheme != "models" or parsed.name is None:
        raise InvalidParameterError(f"{parsed.uri!r} does not name a registered model version")
    name = parsed.name
    if parsed.version is not None:
        return client.get_model_version(name, parsed.version)
    if parsed.alias is not None:
        return client.get_model_version_by_alias(name, parsed.alias)
    if parsed.latest:
        return client.get_model_version_by_alias(name, "latest")
    assert parsed.stage is not None
    found = client.get_latest_versions(name, [parsed.stage])
    if not found:
        versions = client.search_model_versions(f"name = '{_quote(name)}'")
        held = (
            ", ".join(
                f"{v.version} ({v.current_stage})"
                for v in sorted(versions, key=lambda v: v.version)
            )
            or "none"
        )
        raise NotFoundError(
            f"Registered model {name!r} has no version in stage {parsed.stage!r} "
            f"(its versions: {held})"
        )
    return found[0]


def _quote(text: str) -> str:
    return text.replace("'", "''")


def resolve_model_uri(model_uri: str | os.PathLike[str], client: TrackingClient) -> str:
    """The artifact location (file://, s3://, a path...) holding the model's files."""
    parsed = parse_model_uri(model_uri)
    if parsed.scheme == "runs":
        assert parsed.run_id is not None
        root = client.get_artifact_uri(parsed.run_id).rstrip("/")
        return f"{root}/{parsed.path}" if parsed.path else root
    if parsed.model_id is not None:
        return client.get_logged_model(parsed.model_id).artifact_location
    if parsed.scheme == "models":
        version = model_version_for(parsed, client)
        return client.get_model_version_download_uri(version.name, version.version)
    return parsed.uri


def registration_source(
    model_uri: str | os.PathLike[str], client: TrackingClient
) -> tuple[str, str | None]:
    """(source, run_id) a new version registered from `model_uri` records."""
    parsed = parse_model_uri(model_uri)
    if parsed.scheme == "runs":
        return resolve_model_uri(parsed.uri, client), parsed.run_id
    if parsed.model_id is not None:  # MLflow records the models:/<model_id> URI itself
        return parsed.uri, client.get_logged_model(parsed.model_id).source_run_id
    if parsed.scheme == "models":
        version = model_version_for(parsed, client)
        source = client.get_model_version_download_uri(version.name, version.version)
        return source, version.run_id
    if parsed.scheme == "":
        return os.path.abspath(os.path.expanduser(parsed.uri)), None
    return parsed.uri, None


def no_model_error(uri: str) -> NotFoundError:
    return NotFoundError(f"no MLmodel file at {uri}: was a model logged there?")


def _check_scheme(scheme: str, uri: str) -> None:
    from fsspec.registry import known_implementations, registry

    if scheme == "mlflow-artifacts":  # a tracking server's artifact proxy (ArtifactRepository)
        return
    if scheme not in known_implementations and scheme not in registry:
        raise InvalidParameterError(
            f"Unsupported model URI scheme {scheme!r} in {uri!r}: use runs:/<run_id>/<path>, "
            f"{_MODELS_FORMS}, a local path, file:// or an fsspec URI such as s3://bucket/path"
        )


def download_model(model_uri: str | os.PathLike[str], dst_path: str, client: TrackingClient) -> str:
    """A local folder with the model's files: the model itself when it is local, else a copy
    under `dst_path`. NotFoundError when nothing is there."""
    uri = os.fspath(model_uri)
    target = uri
    for _ in range(MAX_REDIRECTS):
        parsed = parse_model_uri(target)
        if parsed.scheme == "models":
            target = resolve_model_uri(parsed.uri, client)  # a source may be runs:/ or models:/
            continue
        if parsed.scheme == "runs":
            assert parsed.run_id is not None
            client.get_artifact_uri(parsed.run_id)  # a missing run raises, with its own message
            location = resolve_model_uri(parsed.uri, client)
            local = local_path(location)
            if local is not None:
                return local
            try:
                return client.download_artifacts(parsed.run_id, parsed.path, dst_path)
            except NotFoundError as exc:
                raise no_model_error(uri) from exc
        local = local_path(target)
        if local is not None:
            return local
        _check_scheme(parsed.scheme, target)
        from tracking.artifacts import ArtifactRepository

        try:
            return ArtifactRepository(target).download_artifacts("", dst_path)
        except NotFoundError as exc:
            raise no_model_error(uri) from exc
    raise InvalidParameterError(f"Model URI {uri!r} refers to itself through model sources")

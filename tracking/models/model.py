"""The model folder every flavor writes, and logging it into a run (MLflow's layout).

    <path>/MLmodel                       flavors, signature, input example info, ids
    <path>/<the flavor's model file(s)>
    <path>/code/                         code_paths, put on sys.path when the model loads
    <path>/input_example.json, serving_input_example.json
    <path>/requirements.txt, python_env.yaml, conda.yaml

A flavor supplies a writer for its own files; :func:`save` does the rest (example, signature
inferred from the example when none is given, environment, MLmodel) and :func:`log` saves into
a temporary folder, uploads it to a run's artifacts and optionally registers it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import yaml

from tracking.errors import InvalidParameterError, NotFoundError
from tracking.models.environment import (
    Requirements,
    dump_yaml,
    requirements_for,
    write_environment,
)

__all__ = ["FlavorFiles", "Model", "ModelInfo", "get_model_info", "log", "save"]

_logger = logging.getLogger(__name__)
T = TypeVar("T")

MLMODEL_FILE = "MLmodel"
PYFUNC = "python_function"
CODE_DIR = "code"
LOG_MODEL_HISTORY_TAG = "mlflow.log-model.history"  # MLflow 2's list of a run's models


class Model(dict):  # type: ignore[type-arg]
    """An MLmodel file's content: a dict as written, with MLflow's accessors."""

    @classmethod
    def load(cls, path: str | os.PathLike[str], uri: str | None = None) -> Model:
        """Read `<path>/MLmodel` (or `path` itself when it is the file)."""
        folder = os.fspath(path)
        file = folder if os.path.isfile(folder) else os.path.join(folder, MLMODEL_FILE)
        if not os.path.isfile(file):
            raise NotFoundError(f"no MLmodel file at {uri or folder}: was a model logged there?")
        with open(file, encoding="utf-8") as f:
            try:
                content = yaml.safe_load(f)
            except yaml.YAMLError as e:
                raise InvalidParameterError(
                    f"The MLmodel file at {uri or folder} is not valid YAML: {e}"
                ) from None
        if not isinstance(content, dict) or not isinstance(content.get("flavors"), dict):
            raise InvalidParameterError(f"The MLmodel file at {uri or folder} has no flavors")
        return cls(content)

    @property
    def flavors(self) -> dict[str, Any]:
        return dict(self.get("flavors") or {})

    @property
    def signature(self) -> Any:
        """The ModelSignature, or None when the model was saved without one."""
        from tracking.models.signature import ModelSignature

        raw = self.get("signature")
        return ModelSignature.from_dict(raw) if raw else None

    @property
    def saved_input_example_info(self) -> dict[str, Any] | None:
        return self.get("saved_input_example_info")

    def get_input_schema(self) -> Any:
        signature = self.signature
        return signature.inputs if signature is not None else None

    def get_output_schema(self) -> Any:
        signature = self.signature
        return signature.outputs if signature is not None else None

    def get_params_schema(self) -> Any:
        signature = self.signature
        return signature.params if signature is not None else None

    def load_input_example(self, path: str | os.PathLike[str]) -> Any:
        """The example data stored in the model folder `path` (None without an example)."""
        from tracking.models.input_example import read_example

        info = self.saved_input_example_info
        return read_example(os.fspath(path), info)[0] if info else None

    def flavor_conf(self, flavor: str, uri: str) -> dict[str, Any]:
        """The configuration of `flavor`; InvalidParameterError naming the model's flavors."""
        conf = self.flavors.get(flavor)
        if not isinstance(conf, dict):
            raise InvalidParameterError(
                f"The model at {uri} has no {flavor} flavor (its flavors: "
                f"{', '.join(self.flavors) or 'none'}); load it with its own flavor's load_model"
            )
        return conf


@dataclass(frozen=True)
class ModelInfo:
    """What log_model logged: load it again with ``load_model(info.model_uri)``."""

    artifact_path: str
    model_uri: str
    run_id: str
    flavors: dict[str, Any] = field(default_factory=dict)
    model_uuid: str = ""
    utc_time_created: str = ""
    registered_model_version: int | None = None
    signature: Any = None
    saved_input_example_info: dict[str, Any] | None = None


def load_local(model_uri: str | os.PathLike[str], load: Callable[[str, Model, str], T]) -> T:
    """`load(local folder, MLmodel content, uri)` for the model at `model_uri` (any model URI;
    a remote model is downloaded to a temporary folder for the call)."""
    from tracking.registry.uris import download_model

    uri = os.fspath(model_uri)
    with tempfile.TemporaryDirectory(prefix="trackflow-model-") as tmp:
        local = download_model(uri, tmp)
        return load(local, Model.load(local, uri), uri)


def get_model_info(model_uri: str | os.PathLike[str]) -> ModelInfo:
    """What the MLmodel file of the model at `model_uri` says (any model URI)."""
    from tracking.registry.uris import parse_model_uri

    uri = os.fspath(model_uri)
    meta = load_local(uri, lambda local, model, _: model)
    parsed = parse_model_uri(uri)
    run_id = meta.get("run_id") or parsed.run_id or ""
    return ModelInfo(
        artifact_path=str(meta.get("artifact_path") or parsed.path),
        model_uri=uri,
        run_id=str(run_id),
        flavors=meta.flavors,
        model_uuid=str(meta.get("model_uuid") or ""),
        utc_time_created=str(meta.get("utc_time_created") or ""),
        signature=meta.signature,
        saved_input_example_info=meta.saved_input_example_info,
    )


@dataclass
class FlavorFiles:
    """What a flavor's writer put into the model folder."""

    pyfunc_conf: dict[str, Any] | None  # loader_module and the rest; None: no pyfunc support
    flavor_conf: dict[str, Any] | None  # under flavors.<flavor name>; None: pyfunc only
    packages: list[str]  # what loading the model needs, pinned into requirements.txt
    #: builds the model's pyfunc (predict(data, params)): to infer a signature from an example
    predictor: Callable[[], Any] | None = None


def save(
    path: str | os.PathLike[str],
    flavor_name: str,
    write: Callable[[str], FlavorFiles],
    *,
    signature: Any = None,
    input_example: Any = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    metadata: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Model:
    """Write a model folder at local `path` (absent or empty) with `write` writing the flavor's
    own files; return its MLmodel content. `signature=False` stores none; None infers one from
    `input_example`."""
    from tracking import __version__
    from tracking.models.signature import ModelSignature

    if signature not in (None, False) and not isinstance(signature, ModelSignature):
        raise InvalidParameterError(
            f"signature must be a ModelSignature (see tracking.models.infer_signature), None or "
            f"False, got {type(signature).__name__}"
        )
    requirements_for((), pip_requirements, extra_pip_requirements)  # argument errors first
    folder = os.fspath(path)
    if os.path.exists(folder) and (not os.path.isdir(folder) or os.listdir(folder)):
        raise InvalidParameterError(f"Cannot save the model to {folder!r}: the path already exists")
    os.makedirs(folder, exist_ok=True)
    try:
        files = write(folder)
        code = _copy_code(folder, code_paths)
        meta: dict[str, Any] = {**(extra or {})}
        example = None
        if input_example is not None:
            from tracking.models.input_example import save_example

            example = save_example(folder, input_example)
        if signature is None and example is not None and files.predictor is not None:
            signature = _infer_from_example(files.predictor, example)
        requirements = requirements_for(files.packages, pip_requirements, extra_pip_requirements)
        env = write_environment(folder, requirements)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    flavors: dict[str, Any] = {}
    if files.pyfunc_conf is not None:
        flavors[PYFUNC] = {
            **files.pyfunc_conf,
            "code": code,
            "env": env,
            "python_version": platform.python_version(),
        }
    if files.flavor_conf is not None:
        flavors[flavor_name] = {**files.flavor_conf, "code": code}
    meta["flavors"] = flavors
    if metadata:
        meta["metadata"] = metadata
    meta["model_size_bytes"] = _folder_size(folder)
    meta["model_uuid"] = uuid.uuid4().hex
    if example is not None:
        meta["saved_input_example_info"] = example.info
    if signature:
        meta["signature"] = signature.to_dict()
    meta["trackflow_version"] = __version__
    # MLflow's format: naive UTC datetime, str()-ed ("2024-05-01 12:00:00.123456").
    meta["utc_time_created"] = str(datetime.now(UTC).replace(tzinfo=None))
    with open(os.path.join(folder, MLMODEL_FILE), "w", encoding="utf-8") as f:
        f.write(dump_yaml(meta, sort_keys=True))
    return Model(meta)


def _infer_from_example(predictor: Callable[[], Any], example: Any) -> Any:
    """The signature of the example and the model's output on it; None (warned) on failure."""
    import numpy as np
    import pandas as pd

    from tracking.models.enforcement import enforce_schema
    from tracking.models.signature import ModelSignature, infer_param_schema, infer_schema

    try:
        inputs = infer_schema(example.data)
        params = infer_param_schema(example.params) if example.params else None
        output = predictor().predict(enforce_schema(example.data, inputs), example.params)
        if not inputs.is_tensor_spec() and isinstance(output, np.ndarray) and output.ndim == 1:
            output = pd.Series(output)  # one prediction a row: a column, as MLflow infers it
        try:
            outputs = infer_schema(output)
        except InvalidParameterError:
            outputs = None
        return ModelSignature(inputs, outputs, params)
    except Exception as e:
        _logger.warning("Could not infer the model signature from the input example: %r", e)
        return None


def _copy_code(folder: str, code_paths: Iterable[str | os.PathLike[str]] | None) -> str | None:
    """Copy code_paths (files or folders) into `<folder>/code`; the flavors' ``code`` value."""
    if not code_paths:
        return None
    if isinstance(code_paths, str | os.PathLike):
        raise InvalidParameterError("code_paths must be a list of paths, not a single path")
    target = os.path.join(folder, CODE_DIR)
    os.makedirs(target)
    for item in code_paths:
        source = os.fspath(item)
        name = os.path.basename(os.path.normpath(source))
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, name), dirs_exist_ok=True)
        elif os.path.isfile(source):
            shutil.copy2(source, os.path.join(target, name))
        else:
            raise InvalidParameterError(f"code_paths entry {source!r} does not exist")
    return CODE_DIR


def add_code_to_path(folder: str, conf: dict[str, Any]) -> None:
    """Put the model's ``code`` folder first on sys.path (and leave it there, as MLflow does:
    its classes may import more on first use)."""
    code = conf.get("code")
    if code:
        path = os.path.join(folder, code)
        if path not in sys.path:
            sys.path.insert(0, path)


def _folder_size(folder: str) -> int:
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


# --- logging into a run ----------------------------------------------------------------------
def log(
    save_to: Callable[[str, dict[str, Any]], Model],
    artifact_path: str | None,
    name: str | None,
    registered_model_name: str | None,
    run_id: str | None,
) -> ModelInfo:
    """Save the model with `save_to(local folder, extra MLmodel fields)` and upload it under
    `<artifact_path>/` of `run_id`'s artifacts (else the active run's, else a new run's, as
    MLflow does); with `registered_model_name` also register it as a new version."""
    from tracking import fluent
    from tracking.artifacts import artifact_subpath

    if registered_model_name is not None:
        from tracking.registry import validation as registry_validation

        registry_validation.model_name(registered_model_name)  # fail before logging anything
    if (artifact_path is None) == (name is None):
        raise InvalidParameterError(
            "log_model needs exactly one of artifact_path or name (name is MLflow 3's spelling)"
        )
    given = artifact_path if artifact_path is not None else name
    rel = artifact_subpath(given, "model artifact path")
    if not rel:
        raise InvalidParameterError(f"Invalid model artifact path {given!r}: it must not be empty")
    client = fluent.current_client()
    run_id = run_id or fluent._run_id()
    with tempfile.TemporaryDirectory(prefix="trackflow-model-") as tmp:
        local = os.path.join(tmp, "model")
        meta = save_to(local, {"artifact_path": rel, "run_id": run_id})
        client.log_artifacts(run_id, local, rel)
    _record_history(client, run_id, meta)
    model_uri = f"runs:/{run_id}/{rel}"
    version = None
    if registered_model_name is not None:
        version = client.register_model(model_uri, registered_model_name).version
    return ModelInfo(
        artifact_path=rel,
        model_uri=model_uri,
        run_id=run_id,
        flavors=meta["flavors"],
        model_uuid=meta["model_uuid"],
        utc_time_created=meta["utc_time_created"],
        registered_model_version=version,
        signature=meta.signature,
        saved_input_example_info=meta.saved_input_example_info,
    )


def _record_history(client: Any, run_id: str, meta: dict[str, Any]) -> None:
    """Append the model to the run's `mlflow.log-model.history` tag (oldest dropped to fit)."""
    from tracking.validation import MAX_TAG_VAL_LENGTH

    tags = client.get_run(run_id).data.tags
    try:
        history = json.loads(tags.get(LOG_MODEL_HISTORY_TAG, "[]"))
        history = history if isinstance(history, list) else []
    except json.JSONDecodeError:
        history = []
    history.append(dict(meta))
    value = json.dumps(history)
    while len(value) > MAX_TAG_VAL_LENGTH and len(history) > 1:
        history.pop(0)
        value = json.dumps(history)
    if len(value) <= MAX_TAG_VAL_LENGTH:
        client.set_tag(run_id, LOG_MODEL_HISTORY_TAG, value)

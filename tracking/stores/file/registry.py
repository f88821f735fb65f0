"""The file registry: MLflow's registry FileStore layout under the tracking root.

    <root>/models/<name>/meta.yaml                 the registered model
    <root>/models/<name>/tags/<key>                one file per tag (value, no newline)
    <root>/models/<name>/aliases/<alias>           content: the version number
    <root>/models/<name>/version-<N>/meta.yaml     a version (current_stage Deleted_Internal
    <root>/models/<name>/version-<N>/tags/<key>    once deleted: version numbers never repeat)

MLflow 3 (with MLFLOW_ALLOW_FILE_STORE=true) reads and writes this tree too. Every change runs
under one lock file (`models/.trackflow-registry.lock`, flock + a thread lock), so concurrent
register_model calls, from threads or processes, get distinct version numbers; meta.yaml files
are replaced atomically, so readers never see half-written files and need no lock.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from typing import Any

from tracking.entities import now_ms
from tracking.errors import InvalidParameterError, NotFoundError
from tracking.registry import validation as check
from tracking.registry.base import (
    RegistryStore,
    model_exists,
    model_not_found,
    version_not_found,
)
from tracking.registry.entities import (
    ACTIVE_STAGES,
    ALL_STAGES,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    STAGE_NONE,
    STATUS_READY,
    ModelVersion,
    RegisteredModel,
    canonical_stage,
    latest_per_stage,
)
from tracking.stores.file.disk import (
    DamagedFileError,
    FileLock,
    StatCache,
    atomic_write,
    parse_yaml,
    read_text,
    translating_os_errors,
    walk_files,
    warn_damaged,
    write_yaml,
)

MODELS_FOLDER = "models"
META = "meta.yaml"
TAGS = "tags"
ALIASES = "aliases"
LOCK_FILE = ".trackflow-registry.lock"
WORKSPACE = "default"  # MLflow 3 writes it; single-workspace stores use "default"
_VERSION_DIR = re.compile(r"^version-([0-9]+)$")


def _write_value_file(folder: str, key: str, value: str) -> None:
    path = os.path.join(folder, key)
    try:
        atomic_write(path, value)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, value)


def _read_values(folder: str) -> dict[str, str]:
    values = {}
    for key, path in walk_files(folder):
        try:
            values[key] = read_text(path)
        except FileNotFoundError:  # removed while we listed
            continue
    return values


@translating_os_errors
class FileRegistryStore(RegistryStore):
    """Registered models as folders under `<root>/models` (`root` is the tracking root)."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.models_dir = os.path.join(self.root, MODELS_FOLDER)
        os.makedirs(self.models_dir, exist_ok=True)
        self._lock = FileLock(os.path.join(self.models_dir, LOCK_FILE))
        self._cache = StatCache()

    def _locked(self) -> Any:
        os.makedirs(self.models_dir, exist_ok=True)  # the folder may have been removed since
        return self._lock()

    def _model_dirs(self) -> list[str]:
        try:
            entries = list(os.scandir(self.models_dir))
        except FileNotFoundError:
            return []
        return [e.path for e in entries if not e.name.startswith(".") and e.is_dir()]

    # --- paths and reads -----------------------------------------------------------------------
    def _model_dir(self, name: str) -> str:
        return os.path.join(self.models_dir, check.model_name(name))

    def _existing_model_dir(self, name: str) -> str:
        path = self._model_dir(name)
        if not os.path.isfile(os.path.join(path, META)):
            raise model_not_found(name)
        return path

    def _read_meta(self, folder: str) -> dict[str, Any]:
        return self._cache.get(os.path.join(folder, META), parse_yaml)

    def _write_meta(self, folder: str, meta: dict[str, Any]) -> None:
        path = os.path.join(folder, META)
        write_yaml(path, meta)
        self._cache.put(path, meta)

    def _aliases_in(self, model_dir: str) -> dict[str, int]:
        aliases = {}
        for alias, text in _read_values(os.path.join(model_dir, ALIASES)).items():
            try:
                aliases[alias] = int(text.strip())
            except ValueError:
                warn_damaged(f"alias {alias!r} in {model_dir}: {text[:40]!r} is no version")
        return aliases

    def _aliases(self, name: str) -> dict[str, int]:
        return self._aliases_in(self._existing_model_dir(name))

    def _version_numbers(self, model_dir: str) -> list[int]:
        try:
            names = os.listdir(model_dir)
        except FileNotFoundError:
            return []
        return [int(m.group(1)) for n in names if (m := _VERSION_DIR.match(n))]

    def _version_from_dir(
        self, model_dir: str, number: int, aliases: dict[str, int]
    ) -> ModelVersion | None:
        """The version, or None if it is deleted or not completely written yet."""
        folder = os.path.join(model_dir, f"version-{number}")
        try:
            meta = self._read_meta(folder)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except DamagedFileError as e:
            warn_damaged(str(e))
            return None
        stage = meta.get("current_stage") or STAGE_NONE
        if stage == STAGE_DELETED_INTERNAL:
            return None
        return ModelVersion(
            name=os.path.basename(model_dir),
            version=number,
            creation_timestamp=meta.get("creation_timestamp"),
            last_updated_timestamp=meta.get("last_updated_timestamp"),
            current_stage=stage if stage in ALL_STAGES else STAGE_NONE,
            description=meta.get("description"),
            source=meta.get("source"),
            run_id=meta.get("run_id") or None,
            run_link=meta.get("run_link"),
            status=meta.get("status") or STATUS_READY,
            status_message=meta.get("status_message"),
            user_id=meta.get("user_id"),
            tags=_read_values(os.path.join(folder, TAGS)),
            aliases=sorted(a for a, v in aliases.items() if v == number),
        )

    def _versions_in(self, model_dir: str) -> list[ModelVersion]:
        aliases = self._aliases_in(model_dir)
        found = (
            self._version_from_dir(model_dir, n, aliases) for n in self._version_numbers(model_dir)
        )
        return sorted((mv for mv in found if mv is not None), key=lambda mv: mv.version)

    def _live_version(self, name: str, version: int | str) -> tuple[str, dict[str, Any]]:
        """(folder, meta) of a live version; NotFoundError naming what exists otherwise."""
        number = check.version(version)
        model_dir = self._existing_model_dir(name)
        folder = os.path.join(model_dir, f"version-{number}")
        try:
            meta = dict(self._read_meta(folder))
        except (FileNotFoundError, NotADirectoryError, DamagedFileError):
            meta = {}
        if not meta or meta.get("current_stage") == STAGE_DELETED_INTERNAL:
            live = [mv.version for mv in self._versions_in(model_dir)]
            raise version_not_found(name, number, live)
        return folder, meta

    def _model_from_dir(self, model_dir: str) -> RegisteredModel:
        meta = self._read_meta(model_dir)
        return RegisteredModel(
            name=os.path.basename(model_dir),
            creation_timestamp=meta.get("creation_timestamp"),
            last_updated_timestamp=meta.get("last_updated_timestamp"),
            description=meta.get("description"),
            tags=_read_values(os.path.join(model_dir, TAGS)),
            aliases=self._aliases_in(model_dir),
            latest_versions=latest_per_stage(self._versions_in(model_dir), None),
        )

    def _touch_model(self, model_dir: str, now: int, **changes: Any) -> None:
        """Rewrite the model's meta.yaml with `changes`, a new last_updated_timestamp and the
        current aliases (MLflow keeps a copy of them there)."""
        meta = dict(self._read_meta(model_dir))
        meta.update(changes)
        meta["last_updated_timestamp"] = now
        meta["aliases"] = {a: str(v) for a, v in sorted(self._aliases_in(model_dir).items())}
        self._write_meta(model_dir, meta)

    # --- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        model_dir = self._model_dir(name)
        checked = check.tags(tags, "Registered model")
        description = check.description(description)
        with self._locked():
            if os.path.isfile(os.path.join(model_dir, META)):
                raise model_exists(name)
            if os.path.exists(model_dir):  # a leftover without meta.yaml (e.g. a crash)
                shutil.rmtree(model_dir)
            os.makedirs(os.path.join(model_dir, TAGS))
            for key, value in checked.items():
                _write_value_file(os.path.join(model_dir, TAGS), key, value)
            now = now_ms()
            self._write_meta(
                model_dir,
                {
                    "aliases": {},
                    "creation_timestamp": now,
                    "deployment_job_id": None,
                    "deployment_job_state": None,
                    "description": description,
                    "last_updated_timestamp": now,
                    "name": name,
                    "workspace": WORKSPACE,
                },
            )
        return self._model_from_dir(model_dir)

    def get_registered_model(self, name: str) -> RegisteredModel:
        model_dir = self._existing_model_dir(name)
        try:
            return self._model_from_dir(model_dir)
        except FileNotFoundError:  # deleted meanwhile
            raise model_not_found(name) from None
        except DamagedFileError as e:
            raise NotFoundError(f"Registered model {name!r} is unreadable: {e}") from None

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        description = check.description(description)
        with self._locked():
            model_dir = self._existing_model_dir(name)
            self._touch_model(model_dir, now_ms(), description=description)
        return self.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        target = self._model_dir(new_name)
        with self._locked():
            source = self._existing_model_dir(name)
            if new_name == name:
                return self.get_registered_model(name)
            if os.path.exists(target):
                if os.path.isfile(os.path.join(target, META)):
                    raise model_exists(new_name)
                shutil.rmtree(target)
            os.rename(source, target)
            now = now_ms()
            self._touch_model(target, now, name=new_name)
            for number in self._version_numbers(target):
                folder = os.path.join(target, f"version-{number}")
                try:
                    meta = dict(self._read_meta(folder))
                except (FileNotFoundError, DamagedFileError):
                    continue
                meta.update(name=new_name, last_updated_timestamp=now)
                self._write_meta(folder, meta)
        return self.get_registered_model(new_name)

    def delete_registered_model(self, name: str) -> None:
        with self._locked():
            model_dir = self._existing_model_dir(name)
            doomed = os.path.join(self.models_dir, f".deleted-{uuid.uuid4().hex}")
            os.rename(model_dir, doomed)  # readers see the whole model or nothing
        shutil.rmtree(doomed, ignore_errors=True)

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        key, value = check.tag(key, value, "Registered model")
        with self._locked():
            model_dir = self._existing_model_dir(name)
            _write_value_file(os.path.join(model_dir, TAGS), key, value)
            self._touch_model(model_dir, now_ms())

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        check.tag(key, "", "Registered model")
        with self._locked():
            model_dir = self._existing_model_dir(name)
            try:
                os.unlink(os.path.join(model_dir, TAGS, key))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return
            self._touch_model(model_dir, now_ms())

    def _list_models(self, name: str | None = None) -> list[RegisteredModel]:
        if name is not None:
            try:
                return [self.get_registered_model(name)]
            except (NotFoundError, InvalidParameterError):
                return []
        models = []
        for model_dir in self._model_dirs():
            try:
                models.append(self._model_from_dir(model_dir))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except DamagedFileError as e:
                warn_damaged(str(e))
        return models

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
        checked = check.tags(tags, "Model version")
        description = check.description(description)
        check.source(source)
        check.optional_text("Model version run_id", run_id)
        check.optional_text("Model version run_link", run_link)
        with self._locked():
            model_dir = self._existing_model_dir(name)
            number = max(self._version_numbers(model_dir), default=0) + 1
            folder = os.path.join(model_dir, f"version-{number}")
            os.makedirs(os.path.join(folder, TAGS))
            for key, value in checked.items():
                _write_value_file(os.path.join(folder, TAGS), key, value)
            now = now_ms()
            self._write_meta(
                folder,
                {
                    "creation_timestamp": now,
                    "current_stage": STAGE_NONE,
                    "deployment_job_state": None,
                    "description": description,
                    "last_updated_timestamp": now,
                    "name": name,
                    "run_id": run_id,
                    "run_link": run_link,
                    "source": source,
                    "status": STATUS_READY,
                    "status_message": None,
                    "storage_location": source,
                    "user_id": None,
                    "version": number,
                    "workspace": WORKSPACE,
                },
            )
            self._touch_model(model_dir, now)
        return self.get_model_version(name, number)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        folder, _ = self._live_version(name, version)
        model_dir = os.path.dirname(folder)
        found = self._version_from_dir(
            model_dir, check.version(version), self._aliases_in(model_dir)
        )
        if found is None:
            raise version_not_found(name, check.version(version))
        return found

    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion:
        description = check.description(description)
        with self._locked():
            folder, meta = self._live_version(name, version)
            meta.update(description=description, last_updated_timestamp=now_ms())
            self._write_meta(folder, meta)
        return self.get_model_version(name, version)

    def delete_model_version(self, name: str, version: int | str) -> None:
        number = check.version(version)
        with self._locked():
            folder, meta = self._live_version(name, number)
            now = now_ms()
            meta.update(current_stage=STAGE_DELETED_INTERNAL, last_updated_timestamp=now)
            self._write_meta(folder, meta)
            model_dir = os.path.dirname(folder)
            for alias, target in self._aliases_in(model_dir).items():
                if target == number:
                    os.unlink(os.path.join(model_dir, ALIASES, alias))
            self._touch_model(model_dir, now)

    def set_model_version_tag(self, name: str, version: int | str, key: str, value: str) -> None:
        key, value = check.tag(key, value, "Model version")
        with self._locked():
            folder, _ = self._live_version(name, version)
            _write_value_file(os.path.join(folder, TAGS), key, value)
            self._touch_model(os.path.dirname(folder), now_ms())

    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None:
        check.tag(key, "", "Model version")
        with self._locked():
            folder, _ = self._live_version(name, version)
            try:
                os.unlink(os.path.join(folder, TAGS, key))
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return
            self._touch_model(os.path.dirname(folder), now_ms())

    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        stage = canonical_stage(stage)
        number = check.version(version)
        if archive_existing_versions and stage not in ACTIVE_STAGES:
            raise InvalidParameterError(
                f"archive_existing_versions=True needs stage Staging or Production, not {stage!r}"
            )
        with self._locked():
            folder, meta = self._live_version(name, number)
            model_dir = os.path.dirname(folder)
            now = now_ms()
            if archive_existing_versions:
                for other in self._versions_in(model_dir):
                    if other.version != number and other.current_stage == stage:
                        other_folder = os.path.join(model_dir, f"version-{other.version}")
                        other_meta = dict(self._read_meta(other_folder))
                        other_meta.update(current_stage=STAGE_ARCHIVED, last_updated_timestamp=now)
                        self._write_meta(other_folder, other_meta)
            meta.update(current_stage=stage, last_updated_timestamp=now)
            self._write_meta(folder, meta)
            self._touch_model(model_dir, now)
        return self.get_model_version(name, number)

    def _list_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        dirs = [self._existing_model_dir(name)] if name is not None else self._model_dirs()
        versions = [mv for d in dirs for mv in self._versions_in(d)]
        return [mv for mv in versions if run_id is None or mv.run_id == run_id]

    # --- aliases -------------------------------------------------------------------------------
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        check.alias(alias, for_setting=True)
        with self._locked():
            folder, _ = self._live_version(name, version)
            model_dir = os.path.dirname(folder)
            _write_value_file(os.path.join(model_dir, ALIASES), alias, str(check.version(version)))
            self._touch_model(model_dir, now_ms())

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        check.alias(alias)
        with self._locked():
            model_dir = self._existing_model_dir(name)
            try:
                os.unlink(os.path.join(model_dir, ALIASES, alias))
            except FileNotFoundError:
                return
            self._touch_model(model_dir, now_ms())

"""The interface every registry store (file, sql) implements, and what they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from tracking.errors import AlreadyExistsError, InvalidParameterError, NotFoundError
from tracking.registry import search
from tracking.registry import validation as check
from tracking.registry.entities import (
    ModelVersion,
    RegisteredModel,
    latest_per_stage,
)
from tracking.stores.base import PagedList, page_of


def model_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"Registered Model with name={name} not found")


def model_exists(name: str) -> AlreadyExistsError:
    """MLflow's error for a registered model name in use."""
    return AlreadyExistsError(f"Registered Model (name={name}) already exists.")


def version_not_found(name: str, version: int, existing: Sequence[int] = ()) -> NotFoundError:
    hint = f"; its versions: {', '.join(map(str, sorted(existing)))}" if existing else ""
    return NotFoundError(f"Model Version (name={name}, version={version}) not found{hint}")


class RegistryStore(ABC):
    """Registered models, their versions, tags, stages and aliases.

    Versions count 1, 2, ... per model and are never reused: deleting a version hides it
    (MLflow's soft delete), deleting a registered model removes it with all its versions.
    """

    # --- registered models ---------------------------------------------------------------------
    @abstractmethod
    def create_registered_model(
        self, name: str, tags: dict[str, str] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create a model; AlreadyExistsError if the name is taken."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    @abstractmethod
    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    @abstractmethod
    def delete_registered_model(self, name: str) -> None: ...

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag; a missing tag is no error (MLflow), a missing model is."""

    @abstractmethod
    def _list_models(self, name: str | None = None) -> list[RegisteredModel]:
        """Every registered model (only the one called `name`, if given)."""

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = search.SEARCH_REGISTERED_MODEL_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        what = "registered model"
        comparisons = search.parse_filter(filter_string, what)
        order = search.parse_order_by(order_by, what)
        limit = search.check_max_results(
            max_results, search.SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
        )
        models = self._list_models(search.equality_value(comparisons, "name"))
        return page_of(search.filter_models(models, comparisons, order), limit, page_token)

    # --- model versions ------------------------------------------------------------------------
    @abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        run_link: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Add version max(existing, deleted included) + 1; safe when callers race."""

    @abstractmethod
    def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...

    @abstractmethod
    def update_model_version(
        self, name: str, version: int | str, description: str | None
    ) -> ModelVersion: ...

    @abstractmethod
    def delete_model_version(self, name: str, version: int | str) -> None:
        """Hide the version (its number is not reused) and drop the aliases pointing at it."""

    @abstractmethod
    def set_model_version_tag(
        self, name: str, version: int | str, key: str, value: str
    ) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: int | str, key: str) -> None: ...

    @abstractmethod
    def transition_model_version_stage(
        self, name: str, version: int | str, stage: str, archive_existing_versions: bool = False
    ) -> ModelVersion:
        """Move a version to None, Staging, Production or Archived (any to any, as MLflow);
        archive_existing_versions archives the model's other versions in that stage."""

    @abstractmethod
    def _list_versions(
        self, name: str | None = None, run_id: str | None = None
    ) -> list[ModelVersion]:
        """Every live (not deleted) version; of model `name` / from run `run_id` if given.
        With a name, raises NotFoundError if that model does not exist."""

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = search.SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        what = "model version"
        comparisons = search.parse_filter(filter_string, what)
        order = search.parse_order_by(order_by, what)
        limit = search.check_max_results(
            max_results, search.SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD
        )
        name = search.equality_value(comparisons, "name")
        try:
            versions = self._list_versions(name, search.equality_value(comparisons, "run_id"))
        except (NotFoundError, InvalidParameterError):  # no model of that name (valid or not)
            versions = []
        return page_of(search.filter_versions(versions, comparisons, order), limit, page_token)

    def get_latest_versions(self, name: str, stages: list[str] | None = None) -> list[ModelVersion]:
        """The newest version in each of `stages` (default: every stage that has one)."""
        if isinstance(stages, str):
            stages = [stages]
        return latest_per_stage(self._list_versions(check.model_name(name)), stages)

    # --- aliases -------------------------------------------------------------------------------
    @abstractmethod
    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point `alias` at a version (moving it if it pointed elsewhere)."""

    @abstractmethod
    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Remove an alias; a missing alias is no error (MLflow), a missing model is."""

    @abstractmethod
    def _aliases(self, name: str) -> dict[str, int]:
        """The model's aliases; NotFoundError if the model does not exist."""

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version `alias` points at; 'latest' is the newest live version."""
        check.model_name(name)
        check.alias(alias)
        if alias.lower() == check.RESERVED_ALIAS_LATEST:
            versions = self._list_versions(name)
            if not versions:
                raise NotFoundError(f"Registered model {name!r} has no versions, so no @latest")
            return max(versions, key=lambda mv: mv.version)
        aliases = self._aliases(name)
        if alias not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise NotFoundError(
                f"Registered model {name!r} has no alias {alias!r} (its aliases: {known})"
            )
        return self.get_model_version(name, aliases[alias])

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """Where the version's files are: its source."""
        source = self.get_model_version(name, version).source
        if not source:
            raise InvalidParameterError(f"Model version {version} of {name!r} has no source")
        return source

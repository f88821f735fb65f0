"""Rules for registry names, versions, aliases and tags (MLflow's, plus what paths need)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from tracking import validation
from tracking.errors import InvalidParameterError

MAX_MODEL_NAME_LENGTH = 256
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 100_000
MAX_DESCRIPTION_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
RESERVED_ALIAS_LATEST = "latest"
MAX_VERSION = 2**31 - 1  # the SQL stores keep version numbers in 32-bit columns

_ALIAS_RE = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+$")
_DIGITS_RE = re.compile(r"^[0-9]+$")


def model_name(name: object) -> str:
    """A registered model name: not blank, no '/', '\\', ':' or '%', not starting with '.'."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError(
            f"Registered model name must be a non-empty string, got {name!r}"
        )
    bad = sorted({c for c in name if c in "/\\:%"})
    if bad:
        raise InvalidParameterError(
            f"Invalid registered model name {name!r}: it cannot contain {', '.join(map(repr, bad))}"
        )
    if name.startswith("."):
        raise InvalidParameterError(
            f"Invalid registered model name {name!r}: it cannot start with '.'"
        )
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidParameterError(
            f"Registered model name {name[:40]!r}... is {len(name)} characters long; at most "
            f"{MAX_MODEL_NAME_LENGTH} are allowed"
        )
    validation.text("Registered model name", name)
    size = len(name.encode("utf-8"))
    if size > validation.MAX_KEY_PART_BYTES:
        raise InvalidParameterError(
            f"Registered model name {name[:40]!r}... is {size} bytes long in UTF-8; at most "
            f"{validation.MAX_KEY_PART_BYTES} are allowed (it is a folder name in the file store)"
        )
    return name


def version(value: object) -> int:
    """A model version number: a positive integer, or its decimal text ("3")."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS_RE.match(value.strip()):
        number = int(value)
    if number is None or not 1 <= number <= MAX_VERSION:
        raise InvalidParameterError(
            f"Invalid model version {validation.shown(value)}: expected a positive integer "
            f"such as 1 or '1', at most {MAX_VERSION}"
        )
    return number


def alias(name: object, *, for_setting: bool = False) -> str:
    """An alias name: letters, digits, '_' and '-', at most 255 characters; setting one also
    rejects the reserved 'latest' and v<digits>."""
    if not isinstance(name, str) or not name:
        raise InvalidParameterError(f"Alias must be a non-empty string, got {name!r}")
    if not _ALIAS_RE.match(name):
        raise InvalidParameterError(
            f"Invalid alias {name!r}: only letters, digits, underscores (_) and dashes (-) are "
            "allowed"
        )
    if len(name) > MAX_ALIAS_LENGTH:
        raise InvalidParameterError(
            f"Alias {name[:40]!r}... is {len(name)} characters long; at most {MAX_ALIAS_LENGTH} "
            "are allowed"
        )
    if for_setting and name.lower() == RESERVED_ALIAS_LATEST:
        raise InvalidParameterError(
            "The alias 'latest' (any case) is reserved: models:/<name>@latest always means the "
            "newest version"
        )
    if for_setting and _VERSION_ALIAS_RE.match(name):
        raise InvalidParameterError(
            f"The alias {name!r} is reserved: v<digits> names a version number"
        )
    return name


def tag(key: object, value: object, what: str) -> tuple[str, str]:
    """(key, value) of a registered model or model version tag; the value must be a string."""
    validation.validate_key(key, f"{what} tag key")
    if not isinstance(value, str):
        raise InvalidParameterError(
            f"{what} tag {key!r} must have a string value, got {type(value).__name__}"
        )
    if len(value) > MAX_TAG_VALUE_LENGTH:
        raise InvalidParameterError(
            f"{what} tag {key!r} has a value of {len(value)} characters; at most "
            f"{MAX_TAG_VALUE_LENGTH} are allowed"
        )
    return key, validation.text(f"{what} tag {key!r} value", value)  # type: ignore[return-value]  # key: validate_key checked it is a str


def tags(values: Mapping[str, object] | None, what: str) -> dict[str, str]:
    """Tags given as a dict (values str()-ed, as MLflow's clients do) or None."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidParameterError(f"{what} tags must be a dict, got {type(values).__name__}")
    return dict(tag(k, str(v), what) for k, v in values.items())


def description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameterError(f"Description must be a string, got {type(value).__name__}")
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameterError(
            f"Description is {len(value)} characters long; at most {MAX_DESCRIPTION_LENGTH} "
            "are allowed"
        )
    return validation.text("Description", value)


def source(value: object) -> str:
    """A model version's source: a non-empty URI or path."""
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(
            f"Model version source must be a URI, got {validation.shown(value)}"
        )
    return validation.text("Model version source", value)


def optional_text(what: str, value: object) -> str | None:
    """An optional text field (run_id, run_link of a model version)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameterError(f"{what} must be a string, got {validation.shown(value)}")
    return validation.text(what, value)

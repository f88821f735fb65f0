"""Datasets for `tracking.log_input`, as `mlflow.data` builds them: `from_pandas`, `from_numpy`.

A dataset records where data came from and a fingerprint of it, never the data itself: its name
("dataset" unless given), an 8-character digest (an MD5 over at most 10,000 rows or elements,
the shape and the column names, computed exactly as MLflow computes it, so the same data gets
the same digest from either tool), its source (a URI, or the code that built it), its schema
(MLflow's column or tensor specs) and a profile (row and element counts, or array shapes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tracking import system_tags
from tracking.entities import Dataset as DatasetRecord
from tracking.entities import DatasetInput
from tracking.errors import InvalidParameterError
from tracking.logged_models import DATASET_CONTEXT_TAG, dataset_from_dict

MAX_ROWS = 10_000
__all__ = [
    "Dataset",
    "NumpyDataset",
    "PandasDataset",
    "from_numpy",
    "from_pandas",
    "inputs_of",
    "record_of",
]


class DatasetSource:
    """Where a dataset came from: a URI (local path, s3://, https://, ...) or the code that
    built it (the run context's tags)."""

    def __init__(self, source_type: str, values: dict[str, Any]) -> None:
        self.source_type = source_type
        self.values = values

    @classmethod
    def resolve(cls, source: str | DatasetSource | None) -> DatasetSource:
        if isinstance(source, DatasetSource):
            return source
        if source is None:
            return cls("code", {"tags": system_tags.default_tags()})
        if not isinstance(source, str) or not source:
            raise InvalidParameterError(f"A dataset source must be a URI or path, got {source!r}")
        scheme = urlsplit(source).scheme.lower()
        if scheme in ("http", "https"):
            return cls("http", {"url": source})
        if len(scheme) <= 1 or scheme == "file":  # a path (C:\\ included) or file://
            return cls("local", {"uri": source})
        return cls(scheme, {"uri": source})

    def to_json(self) -> str:
        return json.dumps(self.values)


class Dataset:
    """A dataset's record: name, digest, source, schema and profile (see the module doc)."""

    def __init__(
        self, source: str | DatasetSource | None, name: str | None, digest: str | None
    ) -> None:
        self.source = DatasetSource.resolve(source)
        self.name = name if name is not None else "dataset"
        self.digest = digest or self._compute_digest()

    def _compute_digest(self) -> str:
        raise NotImplementedError

    @property
    def schema(self) -> dict[str, Any] | None:
        raise NotImplementedError

    @property
    def profile(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self) -> dict[str, str | None]:
        """name, digest, source, source_type, schema and profile, as MLflow records them."""
        schema = self.schema
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source.to_json(),
            "source_type": self.source.source_type,
            "schema": json.dumps(schema) if schema is not None else None,
            "profile": json.dumps(self.profile),
        }

    def to_record(self) -> DatasetRecord:
        """The entity the stores keep."""
        return dataset_from_dict(self.to_dict())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} digest={self.digest!r}>"


def _md5_digest(elements: list[Any]) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    for element in elements:
        md5.update(element)
    return md5.hexdigest()[:8]


# --- pandas -------------------------------------------------------------------------------------


def _column_type(column: Any) -> str | None:
    """MLflow's column type of a pandas Series; None when its values are of mixed types."""
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_integer_dtype(dtype):
        return "long" if dtype.itemsize == 8 and dtype.kind == "i" else "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float" if dtype.itemsize == 4 else "double"
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        values = column.dropna()
        kinds = {type(v) for v in values}
        if not kinds or kinds <= {str}:
            return "string"
        if kinds <= {bytes}:
            return "binary"
        if kinds <= {bool}:
            return "boolean"
        return None
    return None


class PandasDataset(Dataset):
    """A pandas DataFrame as a dataset; `targets` and `predictions` name columns of it."""

    def __init__(
        self,
        df: Any,
        source: str | DatasetSource | None = None,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        for what, column in (("targets", targets), ("predictions", predictions)):
            if column is not None and column not in df.columns:
                raise InvalidParameterError(
                    f"The specified pandas DataFrame does not contain the specified {what} "
                    f"column '{column}'."
                )
        self.df = df
        self.targets = targets
        self.predictions = predictions
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        import numpy as np
        import pandas as pd

        df = self.df
        trimmed = df.head(MAX_ROWS)
        strings = trimmed.columns[df.map(lambda v: type(v) is str).all(0)]
        numbers = trimmed.select_dtypes(include=[np.number]).columns
        trimmed = trimmed[strings.union(numbers)]
        return _md5_digest(
            [pd.util.hash_pandas_object(trimmed).values, np.int64(len(df))]
            + [str(c).encode() for c in df.columns]
        )

    @property
    def schema(self) -> dict[str, Any] | None:
        specs = []
        for name in self.df.columns:
            column = self.df[name]
            kind = _column_type(column)
            if kind is None:
                return None
            specs.append({"type": kind, "name": str(name), "required": not column.isna().any()})
        return {"mlflow_colspec": specs}

    @property
    def profile(self) -> dict[str, Any]:
        return {"num_rows": len(self.df), "num_elements": int(self.df.size)}


def from_pandas(
    df: Any,
    source: str | DatasetSource | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A dataset of a pandas DataFrame (`mlflow.data.from_pandas`); `source` defaults to the
    code building it."""
    return PandasDataset(df, source, targets, name, digest, predictions)


# --- numpy --------------------------------------------------------------------------------------


def _tensor_spec(array: Any) -> str:
    shape = [-1, *array.shape[1:]] if array.ndim else []
    dtype = {"U": "str", "S": "bytes"}.get(array.dtype.kind, str(array.dtype))
    return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}}])


class NumpyDataset(Dataset):
    """NumPy features (and optional targets) as a dataset."""

    def __init__(
        self,
        features: Any,
        source: str | DatasetSource | None = None,
        targets: Any = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        self.features = features
        self.targets = targets
        super().__init__(source, name, digest)

    def _compute_digest(self) -> str:
        import numpy as np
        import pandas as pd

        elements: list[Any] = []
        for array in (self.features, self.targets):
            if array is None:
                continue
            flat = array.flatten()[:MAX_ROWS]
            try:
                elements.append(pd.util.hash_array(flat))
            except TypeError:
                elements.append(np.int64(flat.size))
            elements.extend(np.int64(x) for x in array.shape)
        return _md5_digest(elements)

    @property
    def schema(self) -> dict[str, Any] | None:
        targets = _tensor_spec(self.targets) if self.targets is not None else None
        return {"mlflow_tensorspec": {"features": _tensor_spec(self.features), "targets": targets}}

    @property
    def profile(self) -> dict[str, Any]:
        profile = {
            "features_shape": list(self.features.shape),
            "features_size": int(self.features.size),
            "features_nbytes": int(self.features.nbytes),
        }
        if self.targets is not None:
            profile["targets_shape"] = list(self.targets.shape)
            profile["targets_size"] = int(self.targets.size)
            profile["targets_nbytes"] = int(self.targets.nbytes)
        return profile


def from_numpy(
    features: Any,
    source: str | DatasetSource | None = None,
    targets: Any = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A dataset of NumPy arrays (`mlflow.data.from_numpy`)."""
    return NumpyDataset(features, source, targets, name, digest)


def record_of(dataset: Any) -> DatasetRecord:
    """The stored record of a dataset: ours, a record already, or any object with MLflow's
    dataset `to_dict()` (name, digest, source, source_type, schema, profile)."""
    if isinstance(dataset, DatasetRecord):
        return dataset
    if isinstance(dataset, Dataset):
        return dataset.to_record()
    to_dict = getattr(dataset, "to_dict", None)
    values = to_dict() if callable(to_dict) else None
    if not isinstance(values, dict) or not {"name", "digest", "source", "source_type"} <= set(
        values
    ):
        raise InvalidParameterError(
            f"Cannot log {type(dataset).__name__} as a dataset: use tracking.data.from_pandas, "
            "tracking.data.from_numpy or an mlflow.data dataset"
        )
    return dataset_from_dict(values)


#: The input context of datasets recorded from a function's arguments (`inputs_of`).
ARGUMENT_CONTEXT = "input"


def inputs_of(arguments: Mapping[str, Any]) -> list[DatasetInput]:
    """Dataset inputs for the DataFrame, Series and ndarray values among `arguments`, each
    named after its argument (context "input"): their digest, schema and profile, no data."""
    import sys

    pandas = sys.modules.get("pandas")
    numpy = sys.modules.get("numpy")  # neither imported: no argument can be one of theirs
    found = []
    for name, value in arguments.items():
        dataset: Dataset | None = None
        if pandas is not None and isinstance(value, pandas.DataFrame):
            dataset = from_pandas(value, name=name)
        elif pandas is not None and isinstance(value, pandas.Series):
            dataset = from_pandas(value.to_frame(), name=name)
        elif numpy is not None and isinstance(value, numpy.ndarray):
            dataset = from_numpy(value, name=name)
        if dataset is not None:
            found.append(DatasetInput(dataset.to_record(), {DATASET_CONTEXT_TAG: ARGUMENT_CONTEXT}))
    return found

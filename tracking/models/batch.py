"""Batch scoring: a file of inputs through a model's pyfunc (``trackflow models predict``).

Input: CSV (a header row), Parquet, or JSON in the scoring server's request format
(``dataframe_split``, ``dataframe_records``, ``instances`` or ``inputs``, optional ``params``).
Rows are scored in batches, each checked against the model's signature; a progress bar on
stderr shows the batches when there is more than one. Output: JSON ``{"predictions": [...]}``
(stdout, or a ``.json`` file), or a table of predictions for ``.csv`` / ``.parquet`` files.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from tracking.errors import InvalidParameterError, TrackingError

__all__ = ["FORMATS", "input_format", "predict_batches", "read_input", "write_output"]

FORMATS = ("csv", "json", "parquet")
_EXTENSIONS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_BATCH_ROWS = 10_000


def input_format(path: str, given: str | None) -> str:
    """The input format: `given`, else the file's extension."""
    if given is not None:
        if given not in FORMATS:
            raise InvalidParameterError(
                f"Unknown content type {given!r}; use one of {', '.join(FORMATS)}"
            )
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise InvalidParameterError(
            f"Cannot tell the format of {path!r} from its extension; pass -t/--content-type "
            f"({', '.join(FORMATS)})"
        )
    return _EXTENSIONS[ext]


def read_input(path: str, fmt: str) -> tuple[Any, dict[str, Any] | None]:
    """(model input, params) read from the file at `path`."""
    import pandas as pd

    from tracking.servers import scoring

    if not os.path.isfile(path):
        raise InvalidParameterError(f"Input file {path!r} does not exist")
    try:
        if fmt == "csv":
            return pd.read_csv(path), None
        if fmt == "parquet":
            _parquet_engine()
            return pd.read_parquet(path), None
        with open(path, "rb") as f:
            return scoring.parse_request(f.read(), scoring.JSON)
    except scoring.InvalidInput as e:
        raise InvalidParameterError(f"{path}: {e.message}") from None
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise InvalidParameterError(f"{path} is not readable as {fmt}: {e}") from None


def _parquet_engine() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InvalidParameterError(
            "Parquet files need pyarrow: pip install 'trackflow[parquet]'"
        ) from None


def predict_batches(
    model: Any,
    data: Any,
    params: dict[str, Any] | None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: bool = True,
) -> Any:
    """The model's predictions for `data`, scored `batch_rows` rows at a time."""
    from tracking.servers import scoring

    if batch_rows < 1:
        raise InvalidParameterError(f"The batch size must be at least 1, got {batch_rows}")
    signature = model.signature
    data = scoring.read_text_numbers(data, signature.inputs if signature is not None else None)
    data = scoring.align_columns(model, data)
    total = _rows(data)
    several = not isinstance(data, dict) and total > batch_rows
    results = []
    batches = _batches(data, total, batch_rows)
    for start, chunk in _with_progress(batches, total, progress and several):
        try:
            results.append(model.predict(chunk, params))
        except TrackingError:
            raise
        except Exception as e:
            raise TrackingError(
                f"The model could not score rows {start}-{start + _rows(chunk) - 1}: "
                f"{type(e).__name__}: {e}"
            ) from e
    return _concat(results)


def _rows(data: Any) -> int:
    return len(data) if hasattr(data, "__len__") and not isinstance(data, dict) else 1


def _batches(data: Any, total: int, size: int) -> Iterator[tuple[int, Any]]:
    if isinstance(data, dict) or total <= size:
        yield 0, data
        return
    rows = data.iloc if hasattr(data, "iloc") else data
    for start in range(0, total, size):
        yield start, rows[start : start + size]


def _with_progress(
    batches: Iterator[tuple[int, Any]], total: int, enabled: bool
) -> Iterator[tuple[int, Any]]:
    if not enabled:
        yield from batches
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("scoring", total=total)
        for start, chunk in batches:
            yield start, chunk
            bar.update(task, advance=_rows(chunk))


def _concat(results: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    if len(results) == 1:
        return results[0]
    first = results[0]
    if isinstance(first, pd.DataFrame | pd.Series):
        return pd.concat(results)
    if isinstance(first, np.ndarray):
        return np.concatenate(results)
    return [p for part in results for p in (part if isinstance(part, list) else list(part))]


def write_output(predictions: Any, path: str | None) -> None:
    """Predictions to `path` (.csv / .parquet: a table; anything else: JSON) or stdout."""
    import pandas as pd

    from tracking.servers.scoring import jsonable

    ext = os.path.splitext(path)[1].lower() if path else ""
    if _EXTENSIONS.get(ext) in ("csv", "parquet"):
        frame = predictions if isinstance(predictions, pd.DataFrame) else _frame(predictions)
        frame.columns = [str(c) for c in frame.columns]
        if _EXTENSIONS[ext] == "csv":
            frame.to_csv(path, index=False)
        else:
            _parquet_engine()
            frame.to_parquet(path, index=False)
        return
    text = json.dumps({"predictions": jsonable(predictions)})
    if path is None:
        sys.stdout.write(text + "\n")
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")


def _frame(predictions: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.Series):
        return (
            predictions.rename(predictions.name or "prediction").to_frame().reset_index(drop=True)
        )
    array = np.asarray(predictions)
    if array.ndim == 1:
        return pd.DataFrame({"prediction": array})
    return pd.DataFrame(array.reshape(len(array), -1))

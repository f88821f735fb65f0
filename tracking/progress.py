"""Progress bars for long commands (gc, migrate, downloads, batch scoring), drawn with rich.

One bar on stderr while a command works through a known amount (items or bytes); nothing when
the caller turns it off or stderr is not a terminal (a log or a pipe gets no bar and no stray
blank line). The bar disappears when done: commands print their own summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Bar:
    """A running bar (or nothing): `update` advances it and changes its fields."""

    def __init__(self, progress: Any = None) -> None:
        self._progress = progress

    def update(self, advance: float = 0, **changes: Any) -> None:
        """Advance by `advance` units; `description=` or any field given to `progress_bar`."""
        if self._progress is not None:
            self._progress.update(self._progress.task_ids[0], advance=advance, **changes)


@contextmanager
def progress_bar(
    description: str,
    total: float | None,
    *,
    enabled: bool = True,
    unit: str = "",
    transfer: bool = False,
    extra: str = "",
    **fields: Any,
) -> Iterator[Bar]:
    """A bar for `total` items (`unit` names them: "runs", "rows") or bytes (`transfer`),
    with `extra` (a rich format string over `fields`, e.g. "{task.fields[counts]}") after it."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield Bar()
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"), BarColumn()]
    if transfer:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns += [MofNCompleteColumn(), *([TextColumn(unit)] if unit else [])]
    columns += [*([TextColumn(extra)] if extra else []), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        progress.add_task(description, total=total, **fields)
        yield Bar(progress)

"""Progress of long commands on stderr, drawn with rich.

`progress_bar`: one bar while a command works through a known amount (gc, migrate, downloads,
batch scoring: items or bytes); nothing when the caller turns it off or stderr is not a
terminal (a log or a pipe gets no bar and no stray blank line); it disappears when done, the
command prints its own summary. `step`: a spinner for a step of unknown length (a clone, an
environment build), then how long it took. `say`: one plain line.
"""

from __future__ import annotations

import time
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


def say(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, soft_wrap=True).print(message, markup=False, highlight=False)


@contextmanager
def step(message: str) -> Iterator[None]:
    """A spinner with `message` while the block runs (on a terminal), then `message: done in
    N s` (everywhere)."""
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)
    started = time.perf_counter()
    with console.status(message + " ..."):
        yield
    console.print(
        f"{message}: done in {time.perf_counter() - started:.1f} s", markup=False, highlight=False
    )

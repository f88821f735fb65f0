"""Long steps (clone, environment build) shown on stderr: a spinner, then how long it took."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


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

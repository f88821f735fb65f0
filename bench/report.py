"""Shared by the benchmarks: a timer and the results table (ours vs MLflow, with targets)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Line:
    op: str
    ours: float
    theirs: float | None  # None: not measured on MLflow's side
    kind: str  # "rate" (calls/s, higher is better) or "time" (seconds, lower is better)
    target: float | None = None  # minimum speed-up, None = informative only
    unit: str = "calls/s"
    abs_target: float | None = None  # our seconds must stay below this
    key: str = ""  # workload name, for --profile

    @property
    def speedup(self) -> float | None:
        if self.theirs is None:
            return None
        if self.kind == "rate":
            return self.ours / self.theirs if self.theirs else float("inf")
        return self.theirs / self.ours if self.ours else float("inf")

    @property
    def verdict(self) -> str:
        if self.abs_target is not None:
            return "PASS" if self.ours < self.abs_target else "FAIL"
        if self.target is None or self.speedup is None:
            return "-"
        return "PASS" if self.speedup >= self.target else "FAIL"

    def target_text(self) -> str:
        if self.abs_target is not None:
            t = self.abs_target
            return f"< {t * 1000:g} ms" if t < 1 else f"< {t:g} s"
        return f">= {self.target:g}x" if self.target is not None else "-"

    def fmt(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.kind == "rate":
            return f"{value:,.0f} {self.unit}"
        return f"{value * 1000:,.1f} ms" if value < 10 else f"{value:,.1f} s"


def print_table(lines: list[Line]) -> None:
    header = ("operation", "ours", "MLflow", "ours/MLflow", "target", "result")
    rows = [
        (
            ln.op,
            ln.fmt(ln.ours),
            ln.fmt(ln.theirs),
            "-" if ln.speedup is None else f"{ln.speedup:,.1f}x",
            ln.target_text(),
            ln.verdict,
        )
        for ln in lines
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    sep = "  "
    print(sep.join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(sep.join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:5], widths[1:5], strict=True)
        ]
        print(sep.join([*cells, row[5]]))

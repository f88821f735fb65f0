"""Fit y = w * x by gradient descent: the model both entry points train."""

from __future__ import annotations

import csv


def load(path: str) -> list[tuple[float, float]]:
    with open(path) as f:
        return [(float(row["x"]), float(row["y"])) for row in csv.DictReader(f)]


def step(w: float, rows: list[tuple[float, float]], alpha: float) -> tuple[float, float]:
    """One epoch: the new weight and the mean squared error before the update."""
    errors = [(w * x - y, x) for x, y in rows]
    loss = sum(e * e for e, _ in errors) / len(rows)
    gradient = 2 * sum(e * x for e, x in errors) / len(rows)
    return w - alpha * gradient, loss

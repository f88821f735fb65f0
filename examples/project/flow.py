"""The same fit as a Prefect flow: `trackflow run examples/project -e flow.py:line_fit`."""

from __future__ import annotations

import os

import fit

from flows import flow
from tasks import task

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.csv")


@task
def epoch(w: float, alpha: float, data: str) -> dict:
    new_w, loss = fit.step(w, fit.load(data), alpha)
    return {"w": new_w, "loss": loss}


@flow
def line_fit(alpha: float = 0.01, epochs: int = 20, data: str = DATA) -> dict:
    result = {"w": 0.0}
    for _ in range(epochs):
        result = epoch(result["w"], alpha, data)
    return result


if __name__ == "__main__":
    line_fit()

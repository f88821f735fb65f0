"""Metric histories of many runs at once, sampled for charts (MLflow's bulk-interval rules)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from tracking.entities import Metric
from tracking.errors import InvalidParameterError

#: MLflow's limits for metrics/get-history-bulk(-interval) requests.
MAX_RUNS_PER_REQUEST = 100
MAX_RESULTS_PER_RUN = 2500
MAX_BULK_HISTORY_RESULTS = 25000


def _evenly_spaced(total: int, count: int) -> list[int]:
    """At most `count` evenly spaced indices into `total` items, first and last included."""
    if total <= count:
        return list(range(total))
    if count == 1:
        return [total - 1]
    step = (total - 1) / (count - 1)
    return sorted({round(i * step) for i in range(count)})


def check_step_range(start: int | None, end: int | None) -> None:
    """Both or neither of start and end, and start <= end (MLflow's rules and wording)."""
    if (start is None) != (end is None):
        raise InvalidParameterError(
            "If either start step or end step are specified, both must be specified."
        )
    if start is not None and end is not None and start > end:
        raise InvalidParameterError(
            "end_step must be greater than start_step. "
            f"Found start_step={start} and end_step={end}."
        )


def sampled_steps(
    histories: Sequence[Sequence[Metric]], max_results: int, start: int | None, end: int | None
) -> list[int]:
    """The steps a chart shows: at most about `max_results` evenly spread over [start, end]
    (default: 0 to the last step), plus each run's first and last step inside the range."""
    check_step_range(start, end)
    max_results = max(1, max_results)
    per_run = [[m.step for m in history] for history in histories]
    bounds = {step for steps in per_run if steps for step in (min(steps), max(steps))}
    all_steps = sorted({step for steps in per_run for step in steps})
    if start is None or end is None:
        start, end = 0, (all_steps[-1] if all_steps else 0)
    bounds = {step for step in bounds if start <= step <= end}
    first, last = bisect.bisect_left(all_steps, start), bisect.bisect_right(all_steps, end)
    if last - first <= max_results:
        chosen = set(all_steps[first:last])
    else:
        interval = (last - first) / max_results
        chosen = {all_steps[first + int(i * interval)] for i in range(max_results)}
        chosen.add(all_steps[last - 1])
    return sorted(chosen | bounds)


def bulk_interval(
    run_ids: Sequence[str],
    history: Callable[[str], list[Metric]],
    max_results: int,
    start: int | None,
    end: int | None,
) -> list[Metric]:
    """Sampled points of each run (`run_id` set), in run order, then step and timestamp."""
    check_step_range(start, end)
    histories = [history(run_id) for run_id in run_ids]
    steps = sampled_steps(histories, max_results, start, end)
    wanted = set(steps)
    per_run = max(max_results, len(steps))
    found: list[Metric] = []
    for run_id, points in zip(run_ids, histories, strict=True):
        kept = sorted((m for m in points if m.step in wanted), key=lambda m: (m.step, m.timestamp))
        found.extend(_with_run(kept[i], run_id) for i in _evenly_spaced(len(kept), per_run))
    return found


def bulk(
    run_ids: Sequence[str], history: Callable[[str], list[Metric]], limit: int
) -> list[Metric]:
    """Every run's points (`run_id` set), runs in id order, each by (timestamp, step, value);
    at most `limit` in all."""
    found: list[Metric] = []
    for run_id in sorted(run_ids):
        points = sorted(history(run_id), key=lambda m: (m.timestamp, m.step, m.value))
        found.extend(_with_run(m, run_id) for m in points)
    return found[:limit]


def _with_run(metric: Metric, run_id: str) -> Metric:
    return Metric(metric.key, metric.value, metric.timestamp, metric.step, run_id=run_id)

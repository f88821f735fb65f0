"""@flow and @task against a real Prefect API: identity, nesting, capture, statuses."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import NamedTuple

import prefect
import pydantic
import pytest
from prefect.context import FlowRunContext, TaskRunContext
from prefect.task_runners import ThreadPoolTaskRunner

import tracking
from flows import flow
from tasks import task
from tasks.runs import DURATION_METRIC, ERROR_MESSAGE_TAG, ERROR_TYPE_TAG

pytestmark = pytest.mark.usefixtures("prefect_api")


def runs_by_name(experiment: str) -> dict[str, tracking.Run]:
    exp = tracking.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r}"
    return {r.info.run_name: r for r in tracking.search_runs([exp.experiment_id])}


def children(parent_id: str, experiment_id: str) -> list[tracking.Run]:
    return tracking.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")


# --- identity and nesting ----------------------------------------------------------------
@task
def add(x: int, y: int = 10) -> int:
    ctx = TaskRunContext.get()
    assert tracking.active_run().info.run_id == ctx.task_run.id.hex
    tracking.log_metric("seen", x)
    return x + y


@flow(name="identity-flow")
def identity_flow(n: int = 2) -> dict:
    ctx = FlowRunContext.get()
    assert tracking.active_run().info.run_id == ctx.flow_run.id.hex
    results = [add(i) for i in range(n)]
    return {"total": sum(results), "flow_run_id": str(ctx.flow_run.id)}


def test_flow_run_and_task_runs_are_tracked() -> None:
    state = identity_flow(n=2, return_state=True)
    result = state.result()
    flow_run_id = result["flow_run_id"]
    exp = tracking.get_experiment_by_name("identity-flow")
    flow_run = tracking.get_run(flow_run_id.replace("-", ""))
    assert flow_run.info.experiment_id == exp.experiment_id
    assert flow_run.info.status == "FINISHED"
    tags = flow_run.data.tags
    assert tags["prefect.flow_name"] == "identity-flow"
    assert tags["prefect.flow_run_id"] == flow_run_id
    assert tags["prefect.flow_run_name"] == flow_run.info.run_name
    assert tags["mlflow.runName"] == flow_run.info.run_name
    assert tags["prefect.tags"] == "[]"
    assert tags["prefect.ui_url"].endswith(f"/runs/flow-run/{flow_run_id}")
    assert tags["mlflow.user"] and tags["mlflow.source.name"].endswith("test_prefect_tracking.py")
    assert "mlflow.parentRunId" not in tags
    assert flow_run.data.params == {"n": "2"}
    assert flow_run.data.metrics["total"] == 21.0
    assert DURATION_METRIC in flow_run.data.metrics
    kids = children(flow_run.info.run_id, exp.experiment_id)
    assert len(kids) == 2
    for kid in kids:
        kt = kid.data.tags
        assert kid.info.run_id == kt["prefect.task_run_id"].replace("-", "")
        assert kt["prefect.task_name"] == "add"
        assert kt["prefect.flow_run_id"] == flow_run_id
        assert kid.info.run_name.startswith("add-")
        assert kid.info.status == "FINISHED"
        x = int(kid.data.params["x"])
        assert kid.data.params == {"x": str(x), "y": "10"}
        assert kid.data.metrics["add"] == x + 10
        assert kid.data.metrics["seen"] == x


@task
def inner(v: int) -> int:
    return v * 2


@task
def outer(v: int) -> int:
    return inner(v) + inner.submit(v + 1).result()


@flow(name="nesting-flow")
def nesting_flow() -> str:
    outer(1)
    return FlowRunContext.get().flow_run.id.hex


def test_nested_tasks_parent_to_the_enclosing_task() -> None:
    flow_run_id = nesting_flow()
    exp = tracking.get_experiment_by_name("nesting-flow").experiment_id
    (outer_run,) = children(flow_run_id, exp)
    assert outer_run.data.tags["prefect.task_name"] == "outer"
    inner_runs = children(outer_run.info.run_id, exp)
    assert sorted(r.data.params["v"] for r in inner_runs) == ["1", "2"]
    assert outer_run.data.metrics["outer"] == 2 + 4


@flow(name="child-flow")
def child_flow(k: int) -> int:
    add(k)
    return k


@task
def task_calling_subflow(k: int) -> int:
    return child_flow(k)


@flow(name="parent-flow")
def parent_flow() -> str:
    child_flow(1)
    task_calling_subflow(2)
    return FlowRunContext.get().flow_run.id.hex


def test_subflows_nest_under_their_caller_in_the_top_level_experiment() -> None:
    flow_run_id = parent_flow()
    assert tracking.get_experiment_by_name("child-flow") is None
    exp = tracking.get_experiment_by_name("parent-flow").experiment_id
    direct = children(flow_run_id, exp)
    names = sorted(
        r.data.tags.get("prefect.flow_name") or r.data.tags["prefect.task_name"] for r in direct
    )
    assert names == ["child-flow", "task_calling_subflow"]
    sub_direct = next(r for r in direct if r.data.tags.get("prefect.flow_name") == "child-flow")
    assert sub_direct.data.params == {"k": "1"}
    assert [r.data.params["x"] for r in children(sub_direct.info.run_id, exp)] == ["1"]
    calling = next(r for r in direct if r.data.tags.get("prefect.task_name"))
    (sub_in_task,) = children(calling.info.run_id, exp)
    assert sub_in_task.data.tags["prefect.flow_name"] == "child-flow"
    assert sub_in_task.info.experiment_id == exp


# --- concurrency ------------------------------------------------------------------------
@task
def square(i: int) -> float:
    tracking.log_param("in_body", i)
    time.sleep(0.01)
    return float(i * i)


@flow(name="map-flow", task_runner=ThreadPoolTaskRunner(max_workers=8))
def map_flow(n: int) -> str:
    futures = square.map(range(n))
    [f.result() for f in futures]
    return FlowRunContext.get().flow_run.id.hex


def test_fifty_mapped_tasks_get_fifty_child_runs() -> None:
    flow_run_id = map_flow(50)
    exp = tracking.get_experiment_by_name("map-flow").experiment_id
    kids = children(flow_run_id, exp)
    assert len(kids) == 50
    assert sorted(int(k.data.params["i"]) for k in kids) == list(range(50))
    for kid in kids:
        i = int(kid.data.params["i"])
        assert kid.data.params["in_body"] == str(i)
        assert kid.data.metrics["square"] == i * i


@flow(name="race-flow")
def race_flow(i: int) -> int:
    return i


def test_concurrent_first_runs_create_one_experiment() -> None:
    barrier = threading.Barrier(4)

    def go(i: int) -> None:
        barrier.wait()
        race_flow(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = [e.name for e in tracking.search_experiments()]
    assert names.count("race-flow") == 1
    exp = tracking.get_experiment_by_name("race-flow").experiment_id
    assert len(tracking.search_runs([exp])) == 4


@task
async def async_step(i: int) -> int:
    await asyncio.sleep(0.01)
    tracking.log_metric("awaited", i)
    return i + 1


@flow(name="async-flow")
async def async_flow() -> str:
    await asyncio.gather(*(async_step(i) for i in range(5)))
    return FlowRunContext.get().flow_run.id.hex


def test_async_flow_with_gathered_async_tasks() -> None:
    flow_run_id = asyncio.run(async_flow())
    exp = tracking.get_experiment_by_name("async-flow").experiment_id
    kids = children(flow_run_id, exp)
    assert len(kids) == 5
    for kid in kids:
        i = int(kid.data.params["i"])
        assert kid.data.metrics == {
            "awaited": float(i),
            "async_step": float(i + 1),
            DURATION_METRIC: kid.data.metrics[DURATION_METRIC],
        }


@task
def numbers(n: int):
    for i in range(n):
        tracking.log_metric("yielded", i, step=i)
        yield i


@flow(name="generator-flow")
def generator_flow() -> str:
    assert list(numbers(3)) == [0, 1, 2]
    return FlowRunContext.get().flow_run.id.hex


def test_generator_task() -> None:
    flow_run_id = generator_flow()
    exp = tracking.get_experiment_by_name("generator-flow").experiment_id
    (kid,) = children(flow_run_id, exp)
    assert kid.info.status == "FINISHED"
    history = tracking.MlflowClient().get_metric_history(kid.info.run_id, "yielded")
    assert [m.step for m in history] == [0, 1, 2]


def test_with_options_keeps_tracking_and_task_outside_flow(monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "loose-tasks")
    renamed = add.with_options(name="add_v2", retries=1)
    assert renamed(1) == 11
    runs = runs_by_name("loose-tasks")
    (run,) = runs.values()
    assert run.data.tags["prefect.task_name"] == "add_v2"
    assert "mlflow.parentRunId" not in run.data.tags
    assert run.data.metrics["add_v2"] == 11


# --- capture ----------------------------------------------------------------------------
@dataclasses.dataclass
class Config:
    lr: float
    layers: int


class Settings(pydantic.BaseModel):
    depth: int
    name: str


class Scores(NamedTuple):
    acc: float
    label: str


@task(exclude_params=["secret"])
def capture(cfg: Config, settings: Settings, extra: dict, secret: str, n: int = 3) -> Scores:
    return Scores(acc=0.5, label="x")


@task(log_params=["a"], log_metrics=False, run_tags={"stage": "train"}, log_result=True)
def narrow(a: int, b: int) -> dict:
    return {"sum": a + b}


@task(nested=False)
def into_parent(z: int) -> float:
    tracking.log_metric("from_body", z)
    return 0.25


@flow(name="capture-flow")
def capture_flow() -> str:
    capture(Config(0.1, 3), Settings(depth=2, name="s"), {"a": {"b": 1}}, "hunter2")
    narrow(1, 2)
    into_parent(7)
    return FlowRunContext.get().flow_run.id.hex


def test_capture_rules_and_options() -> None:
    flow_run_id = capture_flow()
    exp = tracking.get_experiment_by_name("capture-flow").experiment_id
    kids = {k.data.tags["prefect.task_name"]: k for k in children(flow_run_id, exp)}
    assert set(kids) == {"capture", "narrow"}
    assert kids["capture"].data.params == {
        "cfg.lr": "0.1",
        "cfg.layers": "3",
        "settings.depth": "2",
        "settings.name": "s",
        "extra.a.b": "1",
        "n": "3",
    }
    assert kids["capture"].data.metrics["acc"] == 0.5
    assert "label" not in kids["capture"].data.metrics
    narrow_run = kids["narrow"]
    assert narrow_run.data.params == {"a": "1"}
    assert set(narrow_run.data.metrics) == {DURATION_METRIC}
    assert narrow_run.data.tags["stage"] == "train"
    local = tracking.MlflowClient().download_artifacts(narrow_run.info.run_id, "result.json")
    assert json.loads(Path(local).read_text()) == {"sum": 3}
    flow_run = tracking.get_run(flow_run_id)
    assert flow_run.data.params["into_parent.z"] == "7"
    assert flow_run.data.metrics["from_body"] == 7
    assert flow_run.data.metrics["into_parent"] == 0.25


# --- statuses -------------------------------------------------------------------------------
@task
def boom(x: int) -> int:
    raise ValueError(f"bad input {x}")


@task(timeout_seconds=0.5)
async def too_slow() -> None:
    await asyncio.sleep(5)


attempts: list[int] = []


@task(retries=2, retry_delay_seconds=0)
def flaky() -> str:
    attempts.append(1)
    if len(attempts) < 3:
        raise RuntimeError("not yet")
    return "ok"


@flow(name="status-flow")
def status_flow(which: str) -> str:
    flow_run_id = FlowRunContext.get().flow_run.id.hex
    if which == "boom":
        boom(3)
    elif which == "slow":
        asyncio.run(too_slow())
    elif which == "flaky":
        flaky()
    return flow_run_id


def test_failure_is_failed_with_error_tags() -> None:
    state = status_flow("boom", return_state=True)
    assert state.is_failed()
    exp = tracking.get_experiment_by_name("status-flow").experiment_id
    (flow_run,) = tracking.search_runs([exp], "params.which = 'boom'")
    assert flow_run.info.status == "FAILED"
    assert flow_run.data.tags[ERROR_TYPE_TAG] == "ValueError"
    (kid,) = children(flow_run.info.run_id, exp)
    assert kid.info.status == "FAILED"
    assert kid.data.tags[ERROR_TYPE_TAG] == "ValueError"
    assert kid.data.tags[ERROR_MESSAGE_TAG] == "bad input 3"


def test_timeout_is_failed() -> None:
    state = status_flow("slow", return_state=True)
    assert state.is_failed()
    exp = tracking.get_experiment_by_name("status-flow").experiment_id
    (flow_run,) = tracking.search_runs([exp], "params.which = 'slow'")
    (kid,) = children(flow_run.info.run_id, exp)
    assert kid.info.status == "FAILED"
    assert "Timeout" in kid.data.tags[ERROR_TYPE_TAG] or "Cancel" in kid.data.tags[ERROR_TYPE_TAG]


def test_retries_stay_in_one_run_with_the_attempt_count() -> None:
    attempts.clear()
    flow_run_id = status_flow("flaky")
    exp = tracking.get_experiment_by_name("status-flow").experiment_id
    (kid,) = children(flow_run_id, exp)
    assert kid.info.status == "FINISHED"
    assert kid.data.tags["prefect.attempts"] == "3"


@task(cache_policy=prefect.cache_policies.INPUTS, persist_result=True)
def cached_double(x: int) -> int:
    return 2 * x


@flow(name="cache-flow")
def cache_flow(x: int) -> str:
    cached_double(x)
    return FlowRunContext.get().flow_run.id.hex


def test_cache_hit_is_recorded_and_names_its_source() -> None:
    marker = int(time.time() * 1000)  # inputs unique to this test session
    first = cache_flow(marker)
    second = cache_flow(marker)
    exp = tracking.get_experiment_by_name("cache-flow").experiment_id
    (original,) = children(first, exp)
    (hit,) = children(second, exp)
    assert original.data.metrics["cached_double"] == 2 * marker
    assert "trackflow.cached" not in original.data.tags
    assert hit.data.tags["trackflow.cached"] == "true"
    assert hit.data.tags["trackflow.cached_from"] == original.info.run_id
    assert hit.info.status == "FINISHED"


@flow(name="crash-flow")
def crash_flow() -> None:
    add(1)
    raise KeyboardInterrupt


def test_crashed_flow_is_killed() -> None:
    with pytest.raises(KeyboardInterrupt):
        crash_flow()
    (run,) = tracking.search_runs(
        [tracking.get_experiment_by_name("crash-flow").experiment_id],
        "tags.`prefect.flow_name` = 'crash-flow'",
    )
    assert run.info.status == "KILLED"


@task
def letters():
    yield from "ab"


@task
async def async_letters():
    for letter in "xy":
        tracking.log_metric("async_yielded", ord(letter))
        yield letter


@flow(name="generator-scope-flow")
def generator_scope_flow() -> tuple[str, list[str | None]]:
    flow_run_id = FlowRunContext.get().flow_run.id.hex
    seen = []
    for _ in letters():
        seen.append(tracking.active_run().info.run_id)  # the consumer's run, not the task's
    return flow_run_id, seen


def test_generator_run_is_not_active_in_the_consumer_between_items() -> None:
    flow_run_id, seen = generator_scope_flow()
    assert seen == [flow_run_id, flow_run_id]
    exp = tracking.get_experiment_by_name("generator-scope-flow").experiment_id
    (kid,) = children(flow_run_id, exp)
    assert kid.info.status == "FINISHED"


@flow(name="async-generator-flow")
async def async_generator_flow() -> str:
    assert [x async for x in async_letters()] == ["x", "y"]
    return FlowRunContext.get().flow_run.id.hex


def test_async_generator_task() -> None:
    flow_run_id = asyncio.run(async_generator_flow())
    exp = tracking.get_experiment_by_name("async-generator-flow").experiment_id
    (kid,) = children(flow_run_id, exp)
    assert kid.info.status == "FINISHED"
    assert kid.data.metrics["async_yielded"] == ord("y")

"""`flows.flow` / `tasks.task` as drop-ins for `prefect.flow` / `prefect.task`: the same public
surface (signature, overloads, from_source, errors), methods, versions, and cache hits."""

from __future__ import annotations

import inspect
import logging
import os
import subprocess
import sys
import time
import typing
from pathlib import Path

import prefect
import pytest
from prefect.context import FlowRunContext
from prefect.utilities.hashing import file_hash

import tracking
from flows import flow
from tasks import task
from tasks.decorator import CAPTURE_OPTIONS

pytestmark = pytest.mark.usefixtures("prefect_api")

TRACKING_OPTIONS = set(CAPTURE_OPTIONS)  # README: "Options on both decorators"


def keyword_options(fn: typing.Callable[..., object]) -> dict[str, object]:
    parameters = inspect.signature(fn).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}


# --- the public surface ------------------------------------------------------------------
def test_signatures_are_prefects() -> None:
    assert inspect.signature(flow) == inspect.signature(prefect.flows.FlowDecorator().__call__)
    assert inspect.signature(task) == inspect.signature(prefect.tasks.task)
    assert "version" in inspect.signature(flow).parameters


@pytest.mark.parametrize(
    ("ours", "theirs", "extra"),
    [
        (flow, prefect.flows.FlowDecorator().__call__, {"experiment", "capture_environment"}),
        (task, prefect.tasks.task, {"nested", "log_inputs"}),
    ],
)
def test_typed_overloads_take_prefects_options_and_ours(ours, theirs, extra) -> None:
    _, with_options = typing.get_overloads(type(ours).__call__)
    options = keyword_options(with_options)
    prefect_options = keyword_options(theirs)
    assert set(options) == set(prefect_options) | TRACKING_OPTIONS | extra
    assert {k: options[k] for k in prefect_options} == prefect_options


def test_from_source_is_prefects() -> None:
    assert flow.from_source == prefect.flow.from_source


def test_a_type_checker_sees_prefects_flow_and_task_types(tmp_path: Path) -> None:
    sample = Path(__file__).parent / "peers" / "typing_sample.py"
    # errors inside our packages are the type-check job's (docs/architecture.md), not this
    # test's: it asks only what a user's type checker sees
    mypy = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", str(tmp_path)]
    done = subprocess.run(
        [*mypy, str(sample)],
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(Path(__file__).parent.parent)},
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    revealed = [line.split("Revealed type is ")[1] for line in lines if "Revealed" in line]
    ours, theirs = revealed[0::2], revealed[1::2]
    assert ours == theirs and len(ours) == 4
    assert ours[0] == '"prefect.tasks.Task[[x: int, y: int =], int]"'
    assert ours[2] == '"prefect.flows.Flow[[n: int], str]"'


@pytest.mark.parametrize("decorator", [flow, task])
def test_an_unknown_option_names_itself_and_whats_allowed(decorator) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'retires'.*retries"):
        decorator(retires=3)


@pytest.mark.parametrize(
    ("decorator", "hook"), [(flow, "on_completion"), (flow, "on_crashed"), (task, "on_failure")]
)
def test_a_single_hook_gets_prefects_own_error(decorator, hook) -> None:
    def one_hook(*args: object) -> None: ...

    with pytest.raises(TypeError, match=f"Expected iterable for '{hook}'"):
        decorator(lambda: None, **{hook: one_hook})


def test_hooks_list_is_not_changed_and_still_runs() -> None:
    seen: list[str] = []
    hooks = [lambda flow_obj, flow_run, state: seen.append(state.name)]

    @flow(name="hooked-flow", on_completion=hooks)
    def hooked() -> int:
        return 1

    assert hooked() == 1
    assert seen == ["Completed"] and len(hooks) == 1


def test_default_version_is_the_hash_of_the_users_file() -> None:
    @flow
    def versioned() -> None: ...

    assert versioned.version == file_hash(__file__)
    assert flow(version="7")(lambda: None).version == "7"


# --- classmethods and staticmethods ------------------------------------------------------
class Model:
    factor = 3

    @flow(name="classmethod-flow")
    @classmethod
    def scale(cls, x: int) -> int:
        return cls.factor * cls.twice(x) + cls.one()

    @task
    @classmethod
    def twice(cls, x: int) -> int:
        return 2 * x

    @staticmethod
    @task
    def one() -> int:
        return 1

    @flow(name="async-staticmethod-flow")
    @staticmethod
    async def later(x: int) -> int:
        return x


def test_classmethod_and_staticmethod_flows_and_tasks_are_tracked() -> None:
    assert Model.scale(2) == 13
    assert isinstance(Model.scale, prefect.Flow) and isinstance(Model.twice, prefect.Task)
    exp = tracking.get_experiment_by_name("classmethod-flow").experiment_id
    (flow_run,) = tracking.search_runs([exp], "tags.`prefect.task_run_id` IS NULL")
    assert flow_run.data.params == {"x": "2"}
    kids = tracking.search_runs([exp], f"tags.`mlflow.parentRunId` = '{flow_run.info.run_id}'")
    assert sorted(k.data.tags["prefect.task_name"] for k in kids) == ["one", "twice"]
    assert all(k.info.status == "FINISHED" for k in kids)


def test_an_async_staticmethod_flow_stays_async() -> None:
    assert Model.later.isasync
    assert prefect.utilities.asyncutils.run_coro_as_sync(Model.later(5)) == 5
    exp = tracking.get_experiment_by_name("async-staticmethod-flow").experiment_id
    (run,) = tracking.search_runs([exp])
    assert run.info.status == "FINISHED" and run.data.metrics["async-staticmethod-flow"] == 5


# --- cache hits --------------------------------------------------------------------------
@task(cache_key_fn=lambda ctx, params: f"it's {params['x']} \\' `quoted`", persist_result=True)
def quoted_key(x: int) -> int:
    return x + 1


@flow(name="quoted-cache-flow")
def quoted_cache_flow(x: int) -> str:
    quoted_key(x)
    return FlowRunContext.get().flow_run.id.hex


def test_a_cache_key_with_quotes_is_recorded_and_finished() -> None:
    marker = int(time.time() * 1000)
    first, second = quoted_cache_flow(marker), quoted_cache_flow(marker)
    exp = tracking.get_experiment_by_name("quoted-cache-flow").experiment_id
    runs = tracking.search_runs([exp], "tags.`prefect.task_name` = 'quoted_key'")
    by_flow = {r.data.tags["prefect.flow_run_id"].replace("-", ""): r for r in runs}
    original, hit = by_flow[first], by_flow[second]
    assert original.data.tags["prefect.cache_key"] == f"it's {marker} \\' `quoted`"
    assert hit.info.status == "FINISHED"
    assert hit.data.tags["trackflow.cached"] == "true"
    assert hit.data.tags["trackflow.cached_from"] == original.info.run_id


def test_only_tasks_that_can_hit_a_cache_get_the_hook_and_no_logger_is_touched() -> None:
    assert task(lambda: 1).on_completion_hooks == []
    cached = task(lambda: 1, persist_result=True, cache_key_fn=lambda *_: "k")
    assert [h.__name__ for h in cached.on_completion_hooks] == ["trackflow_record_cache_hit"]
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        filters = logging.getLogger(name).filters
        assert all(type(f).__module__.startswith("prefect.") for f in filters)

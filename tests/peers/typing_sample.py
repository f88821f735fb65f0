"""What a type checker sees of our decorators next to Prefect's (tests/test_prefect_dropin.py
runs mypy on this file): each reveal_type of ours is followed by the same for Prefect's."""

from typing import reveal_type

import prefect

from flows import flow
from tasks import task


@task
def add(x: int, y: int = 1) -> int:
    return x + y


@prefect.task
def prefect_add(x: int, y: int = 1) -> int:
    return x + y


@task(retries=2, log_params=["x"], nested=False)
async def async_add(x: int) -> int:
    return x


@prefect.task(retries=2)
async def prefect_async_add(x: int) -> int:
    return x


@flow(name="pipeline", experiment="experiments", log_result=True)
def pipeline(n: int) -> str:
    return str(add(n))


@prefect.flow(name="pipeline")
def prefect_pipeline(n: int) -> str:
    return str(prefect_add(n))


reveal_type(add)
reveal_type(prefect_add)
reveal_type(async_add)
reveal_type(prefect_async_add)
reveal_type(pipeline)
reveal_type(prefect_pipeline)
reveal_type(flow.from_source)
reveal_type(prefect.flow.from_source)

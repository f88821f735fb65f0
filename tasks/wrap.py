"""Wrap a user function in the same shape (sync, async, generator, async generator).

Prefect picks its engine from `inspect` on the function it is given, so the wrapper must keep
the function's kind; `functools.wraps` keeps the signature (parameter schemas, validation) and
`__prefect_task_source__` keeps Prefect's task key and cache key equal to the plain function's.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol


class Execution(Protocol):
    """What a wrapper drives around one call of the user function."""

    def active(self) -> Any: ...  # a context manager making the run active
    def finish(self, result: Any) -> None: ...
    def fail(self, error: BaseException) -> None: ...


Start = Callable[[], Execution | None]


def wrap(fn: Callable[..., Any], start: Start) -> Callable[..., Any]:
    """A wrapper of `fn`'s kind that brackets every call with start() / finish() / fail()."""
    if inspect.isasyncgenfunction(fn):
        wrapper = _async_gen_wrapper(fn, start)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _async_wrapper(fn, start)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _gen_wrapper(fn, start)
    else:
        wrapper = _sync_wrapper(fn, start)
    functools.update_wrapper(wrapper, fn)
    wrapper.__prefect_task_source__ = fn  # type: ignore[attr-defined]
    return wrapper


def _sync_wrapper(fn: Callable[..., Any], start: Start) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution = start()
        if execution is None:
            return fn(*args, **kwargs)
        with execution.active():
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                execution.fail(error)
                raise
        execution.finish(result)
        return result

    return wrapper


def _async_wrapper(fn: Callable[..., Any], start: Start) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution = start()
        if execution is None:
            return await fn(*args, **kwargs)
        with execution.active():
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                execution.fail(error)
                raise
        execution.finish(result)
        return result

    return wrapper


def _gen_wrapper(fn: Callable[..., Any], start: Start) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution = start()
        if execution is None:
            return (yield from fn(*args, **kwargs))
        with execution.active():
            try:
                result = yield from fn(*args, **kwargs)
            except GeneratorExit:  # the consumer stopped early: not a failure
                execution.finish(None)
                raise
            except BaseException as error:
                execution.fail(error)
                raise
        execution.finish(result)
        return result

    return wrapper


def _async_gen_wrapper(fn: Callable[..., Any], start: Start) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution = start()
        if execution is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        with execution.active():
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except GeneratorExit:
                execution.finish(None)
                raise
            except BaseException as error:
                execution.fail(error)
                raise
        execution.finish(None)

    return wrapper

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
Method = classmethod | staticmethod  # type: ignore[type-arg]


def user_function(fn: Callable[..., Any] | Method) -> Callable[..., Any]:
    """The function itself: a classmethod's or staticmethod's `__func__`, else `fn`."""
    return fn.__func__ if isinstance(fn, (classmethod, staticmethod)) else fn


def wrap_method(fn: Callable[..., Any] | Method, start: Start) -> Callable[..., Any] | Method:
    """wrap(), keeping a classmethod or staticmethod: its function is wrapped and the same
    method kind re-applied, so Prefect still sees (and binds) the method kind."""
    if isinstance(fn, (classmethod, staticmethod)):
        return type(fn)(wrap(fn.__func__, start))
    return wrap(fn, start)


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
    """The run is active only while the generator body runs, never in the consumer's code
    between items (a generator shares its caller's context)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution = start()
        if execution is None:
            return (yield from fn(*args, **kwargs))
        inner = fn(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            with execution.active():
                try:
                    item = inner.throw(thrown) if thrown is not None else inner.send(sent)
                except StopIteration as stop:
                    execution.finish(stop.value)
                    return stop.value
                except BaseException as error:
                    execution.fail(error)
                    raise
            sent, thrown = None, None
            try:
                sent = yield item
            except GeneratorExit:  # the consumer stopped early: not a failure
                inner.close()
                execution.finish(None)
                raise
            except BaseException as error:  # thrown in by the consumer: pass it on
                thrown = error

    return wrapper


def _async_gen_wrapper(fn: Callable[..., Any], start: Start) -> Callable[..., Any]:
    """As _gen_wrapper, for async generators."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        execution = start()
        if execution is None:
            async for item in fn(*args, **kwargs):
                yield item
            return
        inner = fn(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            with execution.active():
                try:
                    if thrown is not None:
                        item = await inner.athrow(thrown)
                    else:
                        item = await inner.asend(sent)
                except StopAsyncIteration:
                    execution.finish(None)
                    return
                except BaseException as error:
                    execution.fail(error)
                    raise
            sent, thrown = None, None
            try:
                sent = yield item
            except GeneratorExit:
                await inner.aclose()
                execution.finish(None)
                raise
            except BaseException as error:
                thrown = error

    return wrapper

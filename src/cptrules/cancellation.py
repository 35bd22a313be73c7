"""Stopping work nobody waits for: a shell (the gRPC server) says how to tell that the caller has
gone or its deadline has passed; long loops in the core ask between steps and give up.

The core knows nothing of gRPC: it sees only a function returning True once the work is
abandoned, set for the current thread (a context variable) by whoever runs the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from .errors import CptrulesError

_abandoned: ContextVar[Callable[[], bool] | None] = ContextVar("cptrules_abandoned", default=None)


class RequestAbandoned(CptrulesError):
    """The caller went away or its deadline passed while the work ran."""

    reason = "REQUEST_ABANDONED"


def watch(check: Callable[[], bool]) -> Token[Callable[[], bool] | None]:
    """`abandoned_when` without a context manager, for the per-call path of a server: pass the
    token to `unwatch` when the work ends."""
    return _abandoned.set(check)


def unwatch(token: Token[Callable[[], bool] | None]) -> None:
    _abandoned.reset(token)


@contextmanager
def abandoned_when(check: Callable[[], bool]) -> Iterator[None]:
    """Within the block, `raise_if_abandoned` raises once `check()` is true."""
    token = _abandoned.set(check)
    try:
        yield
    finally:
        _abandoned.reset(token)


def raise_if_abandoned() -> None:
    """Called between steps of long work (a page of codes): stop when nobody waits."""
    check = _abandoned.get()
    if check is not None and check():
        raise RequestAbandoned("the caller went away or its deadline passed; the work was stopped")

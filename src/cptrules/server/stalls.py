"""Ending export streams whose reader has stopped reading.

An export is produced only as fast as its client reads (flow control), so a client that opens
one and then reads nothing would hold the stream, a thread and an export place for as long as
its connection lives. A stream whose last set has waited longer than the stall timeout for the
reader to take it is ended with ABORTED (the client resumes from the last resume_token it
received), and its place is given back at once.

The server sees its reader only through flow control: a send waits while the client's window is
full and goes on when the reader has taken enough to reopen it. So "took nothing" means a send
has waited the whole timeout; the timeout must be longer than a slow reader needs to take a
window's worth of sets (the default of 60 s is, by far).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
from grpc._cython import cygrpc

T = TypeVar("T")
log = logging.getLogger(__name__)
STALLED_CODE = grpc.StatusCode.ABORTED


def _end(context: grpc.ServicerContext, message: str) -> None:
    """End the call with ABORTED and `message`. The sending thread is blocked on a message the
    reader does not take, so the status cannot follow it: the call is cancelled with that status
    (grpc sends it in the trailers, which flow control does not hold back). Where the running
    grpc offers no status on cancel, the call is cancelled plainly (the client sees CANCELLED)."""
    call = getattr(getattr(context, "_rpc_event", None), "call", None)
    try:
        call.cancel(cygrpc.StatusCode.aborted, message)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a grpc without that call: the plain cancel still frees the place
        context.cancel()


class StallWatch:
    """One thread watching every open export: which have been waiting for their reader, since when."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic,
                 background: bool = True) -> None:
        if timeout <= 0:
            raise ValueError(f"a stall timeout must be positive, not {timeout}")
        self.timeout = timeout
        self.clock = clock
        self._waiting: dict[object, tuple[float, grpc.ServicerContext, str]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._background = background  # False: the caller runs `check` (tests, with their clock)
        self.ended = 0  # streams ended for stalling, for tests and metrics

    def watch(self, stream: Iterator[T], context: grpc.ServicerContext, method: str) -> Iterator[T]:
        """`stream`, with the time each item waits for its reader watched."""
        key = object()
        try:
            for item in stream:
                self._wait(key, context, method)
                yield item
                self._resume(key)
        finally:
            self._resume(key)

    def _wait(self, key: object, context: grpc.ServicerContext, method: str) -> None:
        with self._lock:
            self._waiting[key] = (self.clock(), context, method)
            if self._thread is None and self._background:
                self._thread = threading.Thread(target=self._run, name="export-stall-watch", daemon=True)
                self._thread.start()
        self._wake.set()

    def _resume(self, key: object) -> None:
        with self._lock:
            self._waiting.pop(key, None)

    def _run(self) -> None:
        poll = min(1.0, max(0.05, self.timeout / 4))
        while True:
            self._wake.wait(poll if self._waiting else None)
            self._wake.clear()
            self.check()

    def check(self) -> int:
        """End every stream whose reader has kept a set waiting longer than the timeout; how many."""
        now = self.clock()
        with self._lock:
            stalled = [(key, context, method) for key, (since, context, method) in self._waiting.items()
                       if now - since > self.timeout]
            for key, _, _ in stalled:
                del self._waiting[key]
        for _, context, method in stalled:
            self.ended += 1
            log.warning("export stalled, ended", extra={"method": method, "peer": context.peer(),
                                                        "stall_timeout": self.timeout})
            _end(context, f"the reader took nothing for {self.timeout:g} s; the export was ended "
                          "to free its place: resume with the last resume_token received")
        return len(stalled)

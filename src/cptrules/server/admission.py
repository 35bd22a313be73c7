"""Admission control: a bounded number of calls run at once; the rest are refused at once.

Without it every request queued in the thread pool without bound, behind which a health check
waited for as long as the queue took. Now unary calls and streams each have a limit, a call over
its limit gets RESOURCE_EXHAUSTED (ErrorInfo OVERLOADED, RetryInfo) in microseconds, and health
checks are never counted: the server's pool keeps threads beyond both limits, so a health check
always finds one. An admitted unary call's long loops (a page of codes) stop once its client has
gone or its deadline has passed, so a place is not held for an answer nobody will read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc

from ..cancellation import abandoned_when
from . import status
from .handlers import rewrap

HEALTH_CHECK = "/grpc.health.v1.Health/Check"


def _abandoned(context: grpc.ServicerContext) -> bool:
    """The client cancelled, went away, or its deadline passed."""
    if not context.is_active():
        return True
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


class Gate:
    """A counter with a limit; entering never blocks."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a concurrency limit must be at least 1, not {limit}")
        self.limit = limit
        self._active = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self._active >= self.limit:
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._active -= 1

    @property
    def active(self) -> int:
        return self._active


class AdmissionInterceptor(grpc.ServerInterceptor):
    """Counts every call but the exempt ones against its gate.

    A unary call holds its place while its handler computes, so a client that never reads its
    responses does not keep others out; a stream holds its place until it ends on the wire (a
    termination callback), so cancelled and failed streams give their place back too.
    """

    def __init__(self, max_calls: int, max_streams: int,
                 exempt: frozenset[str] = frozenset({HEALTH_CHECK}), max_exports: int = 4,
                 export_prefix: str = "/cptrules.v1.CodeRulesService/") -> None:
        self.calls = Gate(max_calls)
        self.streams = Gate(max_streams)
        # Exports have places of their own: readers that stall a stream hold only export places,
        # never the health-watch and reflection streams that operators and load balancers need.
        self.exports = Gate(max_exports)
        self.export_prefix = export_prefix
        self.exempt = exempt

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method in self.exempt:
            return handler
        streaming = handler.request_streaming or handler.response_streaming
        if not streaming:
            gate, kind = self.calls, "unary"
        elif details.method.startswith(self.export_prefix):
            gate, kind = self.exports, "export"
        else:
            gate, kind = self.streams, "streaming"

        def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def admitted(request: Any, context: grpc.ServicerContext) -> Any:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:  # expired while queued: skip the work
                    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call ran")
                if not gate.try_enter():
                    context.abort_with_status(status.overloaded(kind, gate.limit))
                if streaming:
                    if not context.add_callback(gate.leave):  # the stream has already ended
                        gate.leave()
                        context.abort(grpc.StatusCode.CANCELLED, "the call ended before it ran")
                    return behaviour(request, context)
                try:
                    with abandoned_when(lambda: _abandoned(context)):  # long core loops stop early
                        return behaviour(request, context)
                finally:
                    gate.leave()

            return admitted

        return rewrap(handler, wrap)

"""Admission control: a bounded number of calls run at once; the rest are refused at once.

Without it every request queued in the thread pool without bound, behind which a health check
waited for as long as the queue took. Now unary calls and streams each have a limit, a call over
its limit gets RESOURCE_EXHAUSTED (ErrorInfo OVERLOADED, RetryInfo) in microseconds, and health
checks are never counted: the server's pool keeps threads beyond both limits, so a health check
always finds one. An admitted unary call's long loops (a page of codes) stop once its client has
gone or its deadline has passed, so a place is not held for an answer nobody will read.

Exports are shared fairly: one peer holds at most `max_exports_per_peer` of them (the peer is
the token's id when tokens are on, for clients behind one proxy or NAT share an address but not
a token; else the client's address without its port), and an export whose reader takes nothing
for the stall timeout is ended (stalls.py) so its place is free again.
"""

from __future__ import annotations

import hashlib
import threading
from functools import partial
from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc

from ..cancellation import unwatch, watch
from . import status
from .auth import bearer_token
from .handlers import WrappedPerMethod, rewrap
from .stalls import StallWatch

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


class PeerGate:
    """A limit per peer; entering never blocks."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a per-peer limit must be at least 1, not {limit}")
        self.limit = limit
        self._active: Counter[str] = Counter()
        self._lock = threading.Lock()

    def try_enter(self, peer: str) -> bool:
        with self._lock:
            if self._active[peer] >= self.limit:
                return False
            self._active[peer] += 1
            return True

    def leave(self, peer: str) -> None:
        with self._lock:
            self._active[peer] -= 1
            if self._active[peer] <= 0:
                del self._active[peer]

    def active(self, peer: str) -> int:
        return self._active.get(peer, 0)


def peer_address(context: grpc.ServicerContext) -> str:
    """The client's address without its port: 'ipv4:10.0.0.7', 'ipv6:[::1]'."""
    peer = context.peer() or "unknown"
    host, colon, port = peer.rpartition(":")
    return host if colon and port.isdigit() else peer


def peer_token_id(context: grpc.ServicerContext) -> str | None:
    """A short id of the call's bearer token (a prefix of its SHA-256, never the token)."""
    token = bearer_token(context.invocation_metadata())
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


class AdmissionInterceptor(grpc.ServerInterceptor):
    """Counts every call but the exempt ones against its gate.

    A unary call holds its place while its handler computes, so a client that never reads its
    responses does not keep others out; a stream holds its place until it ends on the wire (a
    termination callback), so cancelled and failed streams give their place back too.
    """

    def __init__(self, max_calls: int, max_streams: int,
                 exempt: frozenset[str] = frozenset({HEALTH_CHECK}), max_exports: int = 4,
                 export_prefix: str = "/cptrules.v1.CodeRulesService/", max_exports_per_peer: int = 2,
                 export_stall_timeout: float | None = 60.0, peer_by_token: bool = False) -> None:
        self.calls = Gate(max_calls)
        self.streams = Gate(max_streams)
        # Exports have places of their own: readers that stall a stream hold only export places,
        # never the health-watch and reflection streams that operators and load balancers need.
        self.exports = Gate(max_exports)
        self.exports_per_peer = PeerGate(max_exports_per_peer)
        self.stalls = StallWatch(export_stall_timeout) if export_stall_timeout else None
        self.peer_by_token = peer_by_token
        self.export_prefix = export_prefix
        self.exempt = exempt
        self._wrapped = WrappedPerMethod()

    def peer(self, context: grpc.ServicerContext) -> str:
        """Who an export place is counted against: the token's id with tokens on (the auth
        interceptor, outside this one, has admitted only listed tokens), else the address."""
        return (self.peer_by_token and peer_token_id(context)) or peer_address(context)

    def _enter_export(self, context: grpc.ServicerContext) -> None:
        """Take a place for this peer and one of the server's, or refuse the call."""
        peer = self.peer(context)
        if not self.exports_per_peer.try_enter(peer):
            context.abort_with_status(status.overloaded("export", self.exports_per_peer.limit, per_peer=True))
        if not self.exports.try_enter():
            self.exports_per_peer.leave(peer)
            context.abort_with_status(status.overloaded("export", self.exports.limit))

        def leave() -> None:
            self.exports.leave()
            self.exports_per_peer.leave(peer)

        if not context.add_callback(leave):  # the stream has already ended
            leave()
            context.abort(grpc.StatusCode.CANCELLED, "the call ended before it ran")

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method in self.exempt:
            return handler
        return self._wrapped.get(details.method, handler, lambda h: self._admitting(details.method, h))

    def _admitting(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler with its calls counted against the gate of their kind."""
        streaming = handler.request_streaming or handler.response_streaming
        if not streaming:
            gate, kind = self.calls, "unary"
        elif method.startswith(self.export_prefix):
            gate, kind = self.exports, "export"
        else:
            gate, kind = self.streams, "streaming"

        def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def admitted(request: Any, context: grpc.ServicerContext) -> Any:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:  # expired while queued: skip the work
                    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before the call ran")
                if kind == "export":
                    self._enter_export(context)
                    stream = behaviour(request, context)
                    return self.stalls.watch(stream, context, method) if self.stalls else stream
                if not gate.try_enter():
                    context.abort_with_status(status.overloaded(kind, gate.limit))
                if streaming:
                    if not context.add_callback(gate.leave):  # the stream has already ended
                        gate.leave()
                        context.abort(grpc.StatusCode.CANCELLED, "the call ended before it ran")
                    return behaviour(request, context)
                token = watch(partial(_abandoned, context))  # long core loops stop early
                try:
                    return behaviour(request, context)
                finally:
                    unwatch(token)
                    gate.leave()

            return admitted

        return rewrap(handler, wrap)

"""Request bytes → request messages, inside the handler, so bytes that do not parse are the
client's error (INVALID_ARGUMENT, ErrorInfo MALFORMED_REQUEST), not the server's.

grpcio reports a failing request deserializer as INTERNAL and logs a traceback for every such
request; here the handler receives the raw bytes and parses them itself, and a peer sending junk
is logged at most once per interval, with a count of what was not logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc

from . import status
from .handlers import WrappedPerMethod, rewrap

log = logging.getLogger(__name__)


def peer_host(peer: str) -> str:
    """The address without the port ("ipv4:127.0.0.1:5000" → "ipv4:127.0.0.1"): one client
    opening many connections is still one peer."""
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer


def log_unparseable(peer_log: "PeerLog", peer: str, method: str, size: int, error: Exception) -> None:
    """One warning for a request that does not parse, rate-limited per peer host."""
    host = peer_host(peer)
    due, skipped = peer_log.should_log(host)
    if due:
        log.warning("unparseable %s request from %s (%d bytes): %s: %.100s%s", method, host, size,
                    type(error).__name__, error,
                    f" ({skipped} more from this peer were not logged)" if skipped else "")


class PeerLog:
    """Logs a problem per peer at most once per `interval` seconds; remembers a bounded number
    of peers, so a flood of addresses cannot grow it without end."""

    def __init__(self, interval: float = 60.0, max_peers: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.max_peers = max_peers
        self.clock = clock
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # peer → (logged at, since)
        self._lock = threading.Lock()

    def should_log(self, peer: str) -> tuple[bool, int]:
        """(log now?, how many were not logged since the last time)."""
        now = self.clock()
        with self._lock:
            last = self._seen.get(peer)
            if last is not None and now - last[0] < self.interval:
                self._seen[peer] = (last[0], last[1] + 1)
                return False, 0
            self._seen[peer] = (now, 0)
            self._seen.move_to_end(peer)
            while len(self._seen) > self.max_peers:
                self._seen.popitem(last=False)
            return True, last[1] if last else 0


class RequestParsingInterceptor(grpc.ServerInterceptor):
    """Moves request parsing into the handler for every method with a single request message."""

    def __init__(self, peer_log: PeerLog | None = None) -> None:
        self.peer_log = peer_log or PeerLog()
        self._wrapped = WrappedPerMethod()

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        return self._wrapped.get(details.method, handler, lambda h: self._parsing(details.method, h))

    def _parsing(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler taking the request's bytes and parsing them itself."""
        parse = handler.request_deserializer

        def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def parsed(raw: bytes, context: grpc.ServicerContext) -> Any:
                try:
                    request = parse(raw)
                except Exception as error:  # any failure to parse is the request's fault
                    log_unparseable(self.peer_log, context.peer(), method, len(raw), error)
                    context.abort_with_status(status.malformed_request(method, len(raw)))
                return behaviour(request, context)

            return parsed

        return rewrap(handler, wrap, request_deserializer=None)


"""One log event per RPC (method, status code, duration, peer, request id, ruleset revision),
and a request id on every call: the client's `x-request-id` when it sent a sane one, else a new
one; echoed in the trailing metadata, so a client can quote it and an operator can find the line.

Metadata values, tokens included, are never logged; only the request id is read from them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from . import logs
from .handlers import rewrap

log = logging.getLogger("cptrules.requests")

REQUEST_ID = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def request_id(metadata: Any) -> str:
    """The client's request id when it is short and plain text, else a new random one."""
    for key, value in metadata or ():
        if key == REQUEST_ID and isinstance(value, str) and _SANE_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


def _echo(context: grpc.ServicerContext, rid: str) -> None:
    """Add the request id to whatever trailing metadata the call set (a rich status, say)."""
    current = tuple(context.trailing_metadata() or ())
    if not any(key == REQUEST_ID for key, _ in current):
        context.set_trailing_metadata(current + ((REQUEST_ID, rid),))


class RequestLogInterceptor(grpc.ServerInterceptor):
    """The outermost interceptor: every call, refused or not, is logged once."""

    def __init__(self, revision: Callable[[], str]) -> None:
        self.revision = revision

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        rid = request_id(details.invocation_metadata)
        streaming = handler.response_streaming

        def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def logged(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                revision = self.revision()
                logs.bind_request(request_id=rid)
                _echo(context, rid)
                failed = False
                try:
                    result = behaviour(request, context)
                    if streaming:  # logged when the stream ends, not when it starts
                        return self._streamed(result, context, method, rid, revision, start)
                    return result
                except BaseException:
                    failed = True
                    raise
                finally:
                    _echo(context, rid)
                    if not streaming or failed:
                        self._log(context, method, rid, revision, start, failed)
                    logs.clear_request()

            return logged

        return rewrap(handler, wrap)

    def _streamed(self, responses: Any, context: grpc.ServicerContext, method: str, rid: str,
                  revision: str, start: float) -> Any:
        failed = False
        try:
            yield from responses
        except BaseException:
            failed = True
            raise
        finally:
            _echo(context, rid)
            self._log(context, method, rid, revision, start, failed)

    def _log(self, context: grpc.ServicerContext, method: str, rid: str, revision: str,
             start: float, failed: bool) -> None:
        code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
        if isinstance(code, grpc.StatusCode):
            code = code.name
        log.info("rpc", extra={"method": method, "code": str(code), "peer": context.peer(),
                               "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                               "request_id": rid, "revision": revision})

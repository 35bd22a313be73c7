"""Method handlers: rebuilding one with its behaviour wrapped (for the interceptors), and
handlers that take and return bytes, registered from a table of methods."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

_KEEP: Any = object()


def rewrap(handler: grpc.RpcMethodHandler, wrap: Callable[[Any], Any],
           request_deserializer: Any = _KEEP) -> grpc.RpcMethodHandler:
    """The same kind of handler with `wrap(behaviour)` as its behaviour; the request
    deserializer is kept unless one is given (None: the behaviour receives bytes)."""
    args = dict(request_deserializer=handler.request_deserializer
                if request_deserializer is _KEEP else request_deserializer,
                response_serializer=handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **args)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **args)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **args)
    return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **args)


class WrappedPerMethod:
    """An interceptor's wrapped handlers, one per method, reused while the handler it wrapped is
    the same: interceptors run on every call, and building a handler and its closures each time
    cost about as much as answering a remembered request. Only methods that have a handler
    are kept, so the names clients send cannot grow it."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def get(self, method: str, handler: grpc.RpcMethodHandler,
            build: Callable[[grpc.RpcMethodHandler], grpc.RpcMethodHandler]) -> grpc.RpcMethodHandler:
        known = self._known.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = build(handler)
        self._known[method] = (handler, wrapped)
        return wrapped


BytesBehaviour = Callable[[bytes, grpc.ServicerContext], bytes]


def bytes_handler(behaviour: BytesBehaviour) -> grpc.RpcMethodHandler:
    """A unary handler that receives the request's bytes and returns the response's bytes:
    no message is parsed or built by grpc, so stored bytes are written as they are."""
    return grpc.unary_unary_rpc_method_handler(behaviour, request_deserializer=None,
                                               response_serializer=None)


def message_handler(behaviour: Callable[..., Any], request_class: Any, response_class: Any,
                    client_streaming: bool = False, server_streaming: bool = False) -> grpc.RpcMethodHandler:
    """A handler on messages, of the method's kind (unary or streaming either way), as the
    generated code registers them."""
    make = {(False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler}[(client_streaming, server_streaming)]
    return make(behaviour, request_deserializer=request_class.FromString,
                response_serializer=response_class.SerializeToString)


def add_service(server: grpc.Server, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
    """Register a service's method handlers, as generated `add_*_to_server` functions do."""
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)

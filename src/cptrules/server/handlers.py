"""Rebuilding a gRPC method handler with its behaviour wrapped, for the interceptors."""

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

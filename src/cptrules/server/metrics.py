"""Prometheus metrics for every unary RPC: count by method and status, and latency."""

from __future__ import annotations

import time
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram


class MetricsInterceptor(grpc.ServerInterceptor):
    """Wraps unary handlers; streams (reflection) pass through untouched."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("cptrules_rpc_requests", "RPCs handled, by method and status code",
                                ["method", "code"], registry=registry)
        self.latency = Histogram("cptrules_rpc_seconds", "RPC handling time in seconds", ["method"],
                                 registry=registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0))

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner, method = handler.unary_unary, details.method.rsplit("/", 1)[-1]

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            failed = False
            try:
                return inner(request, context)
            except Exception:
                failed = True
                raise
            finally:
                code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
                self.requests.labels(method, code.name).inc()
                self.latency.labels(method).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            observed, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

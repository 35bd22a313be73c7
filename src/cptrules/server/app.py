"""Build the gRPC server: CodeRulesService, standard health checking and reflection."""

from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from ..engine import Engine
from ..v1 import code_rules_service_pb2, code_rules_service_pb2_grpc
from .metrics import MetricsInterceptor
from .servicer import CodeRulesServicer

SERVICE_NAME = code_rules_service_pb2.DESCRIPTOR.services_by_name["CodeRulesService"].full_name


def create_server(engine: Engine, address: str = "127.0.0.1:0", max_workers: int = 8,
                  registry: CollectorRegistry | None = None) -> tuple[grpc.Server, int]:
    """A started-ready server bound to `address`; returns it and the port it got.

    With a Prometheus registry, every unary RPC is counted and timed in it.
    """
    interceptors = [MetricsInterceptor(registry)] if registry is not None else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                         interceptors=interceptors,
                         options=[("grpc.max_receive_message_length", 1 << 20)])
    code_rules_service_pb2_grpc.add_CodeRulesServiceServicer_to_server(CodeRulesServicer(engine), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    return server, port

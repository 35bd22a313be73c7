"""Build the gRPC server: CodeRulesService, standard health checking and reflection, with
bounded concurrency, bounded connections and requests parsed where a bad one is the client's error."""

from __future__ import annotations

import resource
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from .. import limits
from ..engine import Engine
from ..v1 import code_rules_service_pb2
from .admission import AdmissionInterceptor
from .metrics import MetricsInterceptor
from .parsing import RequestParsingInterceptor
from .servicer import CodeRulesServicer, add_to_server

SERVICE_NAME = code_rules_service_pb2.DESCRIPTOR.services_by_name["CodeRulesService"].full_name
# Threads beyond the admission limits: health checks and refusals always find one free.
SPARE_THREADS = 4
# Descriptors kept back from the connection limit for data files, logs and the metrics port.
RESERVED_DESCRIPTORS = 64


def default_max_connections() -> int:
    """As many connections as the process's descriptor limit allows, less a reserve, at most 1000."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(16, min(1000, soft - RESERVED_DESCRIPTORS))


@dataclass(frozen=True)
class ServerOptions:
    """Limits of one server; every one is a `cptrules serve` flag (times in seconds)."""

    workers: int = 8                    # unary calls computed at once; more get RESOURCE_EXHAUSTED
    max_streams: int = 8                # open streams (health Watch, reflection) at once
    max_connections: int = 0            # 0: default_max_connections()
    max_streams_per_connection: int = 32
    max_connection_idle: float = 300.0  # a connection with no call for this long is closed
    max_connection_age: float = 3600.0  # every connection is closed after this, so clients rebalance
    max_connection_age_grace: float = 30.0  # calls still running then get this long to finish
    handshake_timeout: float = 10.0     # a connection that has not spoken HTTP/2 by then is closed
    keepalive_time: float = 60.0        # ping a silent client this often, to find dead peers
    keepalive_timeout: float = 20.0     # and close the connection if the ping is not answered
    min_client_ping_interval: float = 10.0  # pings more often than this count as abuse
    max_request_bytes: int = limits.REQUEST_MAX_BYTES
    max_response_bytes: int = 4 << 20   # a ListCodes page of 1000 codes is about 2.5 MB

    def channel_options(self) -> list[tuple[str, int]]:
        """The grpc core settings these limits translate to."""
        ms = lambda seconds: int(seconds * 1000)  # noqa: E731
        return [
            ("grpc.max_receive_message_length", self.max_request_bytes),
            ("grpc.max_send_message_length", self.max_response_bytes),
            ("grpc.max_concurrent_streams", self.max_streams_per_connection),
            ("grpc.max_allowed_incoming_connections", self.max_connections or default_max_connections()),
            ("grpc.max_connection_idle_ms", ms(self.max_connection_idle)),
            ("grpc.max_connection_age_ms", ms(self.max_connection_age)),
            ("grpc.max_connection_age_grace_ms", ms(self.max_connection_age_grace)),
            ("grpc.server_handshake_timeout_ms", ms(self.handshake_timeout)),
            ("grpc.keepalive_time_ms", ms(self.keepalive_time)),
            ("grpc.keepalive_timeout_ms", ms(self.keepalive_timeout)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", ms(self.min_client_ping_interval)),
            ("grpc.http2.max_ping_strikes", 2),
            # Two servers must not share a port without noticing.
            ("grpc.so_reuseport", 0),
        ]


@dataclass
class Server:
    """A built server, the port it bound and its health service (for a graceful stop)."""

    grpc_server: grpc.Server
    port: int
    health: health.HealthServicer


def build_server(engine: Engine, address: str = "127.0.0.1:0", options: ServerOptions | None = None,
                 registry: CollectorRegistry | None = None) -> Server:
    """A server bound to `address`, ready to start. With a Prometheus registry, every unary RPC
    is counted and timed in it, refusals by admission control and unparseable requests included."""
    options = options or ServerOptions()
    interceptors: list[grpc.ServerInterceptor] = [
        AdmissionInterceptor(options.workers, options.max_streams), RequestParsingInterceptor()]
    if registry is not None:
        interceptors.insert(0, MetricsInterceptor(registry))
    pool = futures.ThreadPoolExecutor(max_workers=options.workers + options.max_streams + SPARE_THREADS,
                                      thread_name_prefix="grpc")
    server = grpc.server(pool, interceptors=interceptors, options=options.channel_options())
    add_to_server(CodeRulesServicer(engine), server)
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
    return Server(server, port, health_servicer)


def create_server(engine: Engine, address: str = "127.0.0.1:0", max_workers: int = 8,
                  registry: CollectorRegistry | None = None,
                  options: ServerOptions | None = None) -> tuple[grpc.Server, int]:
    """A server ready to start and the port it got (`build_server` with fewer handles)."""
    built = build_server(engine, address, options or ServerOptions(workers=max_workers), registry)
    return built.grpc_server, built.port

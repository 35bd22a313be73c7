"""Build the gRPC server: CodeRulesService, standard health checking and reflection, with
bounded concurrency, bounded connections and requests parsed where a bad one is the client's error;
optionally TLS or mutual TLS, bearer tokens, a request log and a decision log."""

from __future__ import annotations

import datetime as dt
import resource
import socket
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from .. import limits
from ..engine import Engine
from ..v1 import code_rules_service_pb2
from .admission import AdmissionInterceptor
from .auth import AuthInterceptor, TokenSet
from .decisions import DecisionInterceptor, DecisionLog
from .metrics import MetricsInterceptor
from .parsing import RequestParsingInterceptor
from .requestlog import RequestLogInterceptor
from .servicer import CodeRulesServicer, add_to_server
from .tls import ServerConfigError, Transport, check_transport, server_credentials

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
    max_exports: int = 4                # open ExportFaqs streams at once, apart from those
    max_exports_per_peer: int = 2       # of those, held by one client (token, or address)
    export_stall_timeout: float = 60.0  # an export whose reader takes nothing this long is ended
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
class Features:
    """What a server does besides answering: transport security, tokens, logs, decisions."""

    transport: Transport = field(default_factory=Transport)
    tokens: TokenSet | None = None
    reflection_requires_auth: bool = False
    decisions: DecisionLog | None = None
    request_log: bool = False


class BindError(ServerConfigError):
    """The listening address cannot be bound (in use, not ours, not an address)."""

    reason = "BIND_FAILED"


def check_bindable(address: str) -> None:
    """Fail in one line, before anything slow, when the address is taken or not ours.
    (grpc binds with SO_REUSEADDR, so a port in TIME_WAIT is still usable.)"""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        raise BindError(f"cannot listen on {address}: {error}") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as error:
            raise BindError(f"cannot listen on {address}: {error.strerror or error}") from None


@dataclass
class Server:
    """A built server, the port it bound and its health service (for a graceful stop)."""

    grpc_server: grpc.Server
    port: int
    health: health.HealthServicer


@dataclass
class _EngineSlot:
    """The engine a bound server will answer from, filled in once it is loaded."""

    engine: Engine | None = None

    def revision(self) -> str:
        return self.engine.snapshot.ruleset.revision if self.engine is not None else ""

    def today(self) -> dt.date:
        assert self.engine is not None
        return self.engine.clock()


@dataclass
class BoundServer:
    """A server holding its port but serving nothing yet: bind first, then load, then install."""

    grpc_server: grpc.Server
    port: int
    _slot: _EngineSlot

    def install(self, engine: Engine) -> Server:
        """Add the services on `engine`; health says SERVING from the moment the server starts."""
        self._slot.engine = engine
        server = self.grpc_server
        add_to_server(CodeRulesServicer(engine), server)
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        for name in ("", SERVICE_NAME):
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        return Server(server, self.port, health_servicer)


def bind_server(address: str = "127.0.0.1:0", options: ServerOptions | None = None,
                registry: CollectorRegistry | None = None,
                features: Features | None = None) -> BoundServer:
    """A server bound to `address` with its interceptors, before any rules or data are loaded.

    Interceptors, outermost first: request log, metrics, tokens, admission control, decision
    log, request parsing. So every call is logged and counted, refusals included; a refused
    token costs no admission slot; the decision log sees request bytes, parsed off the path."""
    options = options or ServerOptions()
    features = features or Features()
    host = address.rpartition(":")[0]
    check_transport(features.transport, host)
    slot = _EngineSlot()
    interceptors: list[grpc.ServerInterceptor] = []
    if features.request_log:
        interceptors.append(RequestLogInterceptor(slot.revision))
    if registry is not None:
        interceptors.append(MetricsInterceptor(registry))
    if features.tokens is not None:
        interceptors.append(AuthInterceptor(features.tokens, features.reflection_requires_auth))
    interceptors.append(AdmissionInterceptor(options.workers, options.max_streams,
                                             max_exports=options.max_exports,
                                             max_exports_per_peer=options.max_exports_per_peer,
                                             export_stall_timeout=options.export_stall_timeout,
                                             peer_by_token=features.tokens is not None))
    if features.decisions is not None:
        interceptors.append(DecisionInterceptor(features.decisions, slot.today, slot.revision))
    interceptors.append(RequestParsingInterceptor())
    pool = futures.ThreadPoolExecutor(max_workers=options.workers + options.max_streams + options.max_exports
                                      + SPARE_THREADS,
                                      thread_name_prefix="grpc")
    server = grpc.server(pool, interceptors=interceptors, options=options.channel_options())
    try:
        if features.transport.tls:
            port = server.add_secure_port(address, server_credentials(features.transport))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise BindError(f"cannot listen on {address}")
    return BoundServer(server, port, slot)


def build_server(engine: Engine, address: str = "127.0.0.1:0", options: ServerOptions | None = None,
                 registry: CollectorRegistry | None = None,
                 features: Features | None = None) -> Server:
    """A server bound to `address`, ready to start. With a Prometheus registry, every unary RPC
    is counted and timed in it, refusals by admission control and unparseable requests included."""
    return bind_server(address, options, registry, features).install(engine)


def create_server(engine: Engine, address: str = "127.0.0.1:0", max_workers: int = 8,
                  registry: CollectorRegistry | None = None,
                  options: ServerOptions | None = None,
                  features: Features | None = None) -> tuple[grpc.Server, int]:
    """A server ready to start and the port it got (`build_server` with fewer handles)."""
    built = build_server(engine, address, options or ServerOptions(workers=max_workers), registry,
                         features)
    return built.grpc_server, built.port

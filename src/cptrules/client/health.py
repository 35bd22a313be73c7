"""`cptrules health ADDR`: one grpc.health.v1 Check, one line out, exit 0 only for SERVING;
usable as a container HEALTHCHECK or an exec probe where a native gRPC probe cannot do TLS."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .channel import Connection

STATUS_NAMES = health_pb2.HealthCheckResponse.ServingStatus


def check(connection: Connection, service: str = "", timeout: float = 5.0) -> tuple[bool, str]:
    """(serving, the line to print) for one Check of `service` ("" is the whole server)."""
    with connection.channel() as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout,
                metadata=connection.metadata(), wait_for_ready=False)
        except grpc.RpcError as error:
            return False, f"{connection.target}: {error.code().name}: {error.details() or ''}".rstrip(": ")
    name = STATUS_NAMES.Name(response.status)
    return response.status == health_pb2.HealthCheckResponse.SERVING, f"{connection.target}: {name}"

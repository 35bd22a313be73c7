"""Helpers shared by tests and benchmarks: a real server on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ..engine import Engine
from ..v1 import code_rules_service_pb2_grpc
from .app import create_server


@contextlib.contextmanager
def running_server(engine: Engine) -> Iterator[tuple[str, int]]:
    """Start the real gRPC server on 127.0.0.1 with an OS-chosen port; stop it afterwards."""
    server, port = create_server(engine, "127.0.0.1:0")
    server.start()
    try:
        yield "127.0.0.1", port
    finally:
        server.stop(grace=None)


@contextlib.contextmanager
def client(port: int) -> Iterator[code_rules_service_pb2_grpc.CodeRulesServiceStub]:
    """A stub on a fresh channel to a loopback port."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo detail of a failed call's rich status; AssertionError when it has none."""
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError(f"no ErrorInfo in {error.code()} {error.details()}")

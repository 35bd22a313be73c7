"""Core exceptions → google.rpc.Status with ErrorInfo and, where it helps, BadRequest or
PreconditionFailure; the one place that picks a gRPC status code.

Error text goes out in trailing metadata, so every string is cut to a bounded length here:
a long piece of bad input must never turn an INVALID_ARGUMENT into "metadata too large"."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..cancellation import RequestAbandoned
from ..errors import (CodeNotFoundError, CptrulesError, DataImportError, InvalidInputError,
                      RuleEvaluationError, RuleFileErrors, ZipNeedsPlusFourError)

DOMAIN = "cptrules.dev"
_MESSAGE_MAX_CHARS = 1000  # a whole message; inputs inside it are already cut to limits.echo
_METADATA_MAX_CHARS = 200
_VIOLATIONS_MAX = 50


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: CptrulesError) -> grpc.Status:
    """The rich status for a core error."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=DOMAIN,
        metadata={k: _cut(str(v), _METADATA_MAX_CHARS) for k, v in error.metadata.items()})
    message = _cut(error.message, _MESSAGE_MAX_CHARS)
    details = [_pack(info)]
    if isinstance(error, InvalidInputError):
        code = code_pb2.INVALID_ARGUMENT
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field, description=message,
                                                        reason=error.reason)])))
    elif isinstance(error, CodeNotFoundError):
        code = code_pb2.NOT_FOUND
        details.append(_pack(error_details_pb2.ResourceInfo(
            resource_type="cptrules.v1.Code", resource_name=error.code,
            description=message)))
    elif isinstance(error, RuleFileErrors):
        code = code_pb2.FAILED_PRECONDITION
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=p.kind, subject=f"{p.path}:{p.line}",
                description=_cut(p.message, _METADATA_MAX_CHARS))
            for p in error.problems[:_VIOLATIONS_MAX]])))
    elif isinstance(error, (RuleEvaluationError, DataImportError)):
        code = code_pb2.FAILED_PRECONDITION
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=error.reason, subject=error.metadata.get("file", ""), description=message)])))
    elif isinstance(error, RequestAbandoned):
        code = code_pb2.CANCELLED
    elif isinstance(error, ZipNeedsPlusFourError):
        code = code_pb2.FAILED_PRECONDITION
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=error.reason, subject=f"locality/{c}", description=error.message)
            for c in error.candidates])))
    else:
        code = code_pb2.FAILED_PRECONDITION
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=details))


def overloaded(kind: str, limit: int, retry_after_ms: int = 100, per_peer: bool = False) -> grpc.Status:
    """RESOURCE_EXHAUSTED for a call refused by admission control; the client may retry soon.
    `per_peer`: the limit is the one each client has (ErrorInfo OVERLOADED_PEER)."""
    info = error_details_pb2.ErrorInfo(reason="OVERLOADED_PEER" if per_peer else "OVERLOADED", domain=DOMAIN,
                                       metadata={"kind": kind, "limit": str(limit)})
    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
        seconds=retry_after_ms // 1000, nanos=retry_after_ms % 1000 * 1_000_000))
    whose = "this client is at" if per_peer else "the server is at"
    return rpc_status.to_status(status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, details=[_pack(info), _pack(retry)],
        message=f"{whose} its limit of {limit} concurrent {kind} calls; retry with backoff"))


def malformed_request(method: str, size: int) -> grpc.Status:
    """INVALID_ARGUMENT for request bytes that are not the method's request message."""
    info = error_details_pb2.ErrorInfo(reason="MALFORMED_REQUEST", domain=DOMAIN,
                                       metadata={"method": method, "bytes": str(size)})
    return rpc_status.to_status(status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, details=[_pack(info)],
        message=f"the {size}-byte request is not a valid {method} request message"))


def unauthenticated(reason: str, message: str) -> grpc.Status:
    """UNAUTHENTICATED: the call carries no credentials the service could check."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    return rpc_status.to_status(status_pb2.Status(
        code=code_pb2.UNAUTHENTICATED, message=message, details=[_pack(info)]))


def permission_denied(reason: str, message: str) -> grpc.Status:
    """PERMISSION_DENIED: the credentials the call carries are not accepted."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    return rpc_status.to_status(status_pb2.Status(
        code=code_pb2.PERMISSION_DENIED, message=message, details=[_pack(info)]))

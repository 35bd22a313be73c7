"""Core exceptions → google.rpc.Status with ErrorInfo and, where it helps, BadRequest or
PreconditionFailure; the one place that picks a gRPC status code."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..errors import (CodeNotFoundError, CptrulesError, DataImportError, InvalidInputError,
                      RuleEvaluationError, RuleFileErrors, ZipNeedsPlusFourError)

DOMAIN = "cptrules.dev"


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: CptrulesError) -> grpc.Status:
    """The rich status for a core error."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN,
                                       metadata={k: str(v) for k, v in error.metadata.items()})
    details = [_pack(info)]
    if isinstance(error, InvalidInputError):
        code = code_pb2.INVALID_ARGUMENT
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message,
                                                        reason=error.reason)])))
    elif isinstance(error, CodeNotFoundError):
        code = code_pb2.NOT_FOUND
        details.append(_pack(error_details_pb2.ResourceInfo(
            resource_type="cptrules.v1.Code", resource_name=error.code,
            description=error.message)))
    elif isinstance(error, RuleFileErrors):
        code = code_pb2.FAILED_PRECONDITION
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=p.kind, subject=f"{p.path}:{p.line}", description=p.message)
            for p in error.problems[:50]])))
    elif isinstance(error, (RuleEvaluationError, DataImportError)):
        code = code_pb2.FAILED_PRECONDITION
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=error.reason, subject=error.metadata.get("file", ""), description=error.message)])))
    elif isinstance(error, ZipNeedsPlusFourError):
        code = code_pb2.FAILED_PRECONDITION
        details.append(_pack(error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type=error.reason, subject=f"locality/{c}", description=error.message)
            for c in error.candidates])))
    else:
        code = code_pb2.FAILED_PRECONDITION
    return rpc_status.to_status(status_pb2.Status(code=code, message=error.message, details=details))

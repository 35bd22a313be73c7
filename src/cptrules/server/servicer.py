"""CodeRulesService: request messages → engine calls → response messages. No rule logic."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

import grpc

from ..engine import Engine
from ..errors import CptrulesError
from ..v1 import code_pb2, code_rules_service_pb2 as service_pb2, code_rules_service_pb2_grpc
from . import convert
from .status import invalid_argument, to_status

log = logging.getLogger(__name__)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn core errors into rich statuses; anything else is logged and is INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except CptrulesError as error:
            context.abort_with_status(to_status(error))
        except _BadDate as bad:
            context.abort_with_status(invalid_argument("date_of_service", str(bad), "INVALID_DATE"))

    return wrapper


class _BadDate(Exception):
    pass


def _date(request: Any) -> dt.date | None:
    try:
        return convert.from_date(request.date_of_service, request.HasField("date_of_service"))
    except ValueError as exc:
        d = request.date_of_service
        raise _BadDate(f"date_of_service {d.year:04d}-{d.month:02d}-{d.day:02d} is not a "
                       f"calendar date: {exc}") from None


class CodeRulesServicer(code_rules_service_pb2_grpc.CodeRulesServiceServicer):
    """Thin gRPC adapter over an Engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @_guarded
    def GetCode(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Code:
        return convert.code(self.engine.get_code(request.code, _date(request)))

    @_guarded
    def BatchGetCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        reports = self.engine.batch_get(list(request.codes), _date(request))
        return service_pb2.BatchGetCodesResponse(codes=[convert.code(r) for r in reports])

    @_guarded
    def ListCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        reports, token, total = self.engine.list_codes(
            request.page_size, request.page_token, convert.category_name(request.category),
            _date(request))
        return service_pb2.ListCodesResponse(codes=[convert.code(r) for r in reports],
                                             next_page_token=token, total_size=total)

    @_guarded
    def GetFaq(self, request: Any, context: grpc.ServicerContext) -> Any:
        report, entries = self.engine.faq(request.code, _date(request))
        return service_pb2.Faq(code=report.code, entries=[convert.answer(e) for e in entries],
                               provenance=convert.provenance(report.provenance))

    @_guarded
    def AnswerQuestion(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Answer:
        return convert.answer(self.engine.answer(request.question, _date(request)))

    @_guarded
    def GetRuleset(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Ruleset:
        snap = self.engine.snapshot
        return convert.ruleset(snap.ruleset, snap.data.sources(), len(snap.codes))

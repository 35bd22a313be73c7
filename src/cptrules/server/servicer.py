"""CodeRulesService: request messages → engine calls → response messages. No rule logic."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

import grpc

from ..engine import Engine
from ..errors import CptrulesError, InvalidInputError
from ..v1 import code_pb2, code_rules_service_pb2 as service_pb2, code_rules_service_pb2_grpc
from . import convert
from .status import to_status

log = logging.getLogger(__name__)


def _guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn core errors into rich statuses; anything else is a defect: logged, INTERNAL."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except CptrulesError as error:
            context.abort_with_status(to_status(error))
        except Exception:
            if context.code() is not None:  # already aborted with a status
                raise
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")

    return wrapper


_EARLIEST, _LATEST = 1990, 2100


def _date(request: Any) -> dt.date | None:
    d = request.date_of_service
    try:
        day = convert.from_date(d, request.HasField("date_of_service"))
    except ValueError as exc:
        raise InvalidInputError(f"date_of_service {d.year:04d}-{d.month:02d}-{d.day:02d} is not a "
                                f"calendar date: {exc}", "date_of_service", reason="INVALID_DATE") from None
    if day is not None and not _EARLIEST <= day.year <= _LATEST:
        raise InvalidInputError(f"date_of_service year {day.year} is outside {_EARLIEST}-{_LATEST}",
                                "date_of_service", reason="INVALID_DATE")
    return day


def _category(request: Any) -> str:
    try:
        return convert.category_name(request.category)
    except ValueError:
        raise InvalidInputError(f"category {request.category} is not a CodeCategory value",
                                "category", reason="INVALID_CATEGORY") from None


class CodeRulesServicer(code_rules_service_pb2_grpc.CodeRulesServiceServicer):
    """Thin gRPC adapter over an Engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @_guarded
    def GetCode(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Code:
        return convert.code(self.engine.get_code(request.code, _date(request), request.modifier,
                                                 request.zip_code, request.locality))

    @_guarded
    def BatchGetCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        reports = self.engine.batch_get(list(request.codes), _date(request), request.zip_code,
                                        request.locality)
        return service_pb2.BatchGetCodesResponse(codes=[convert.code(r) for r in reports])

    @_guarded
    def ListCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        reports, token, total = self.engine.list_codes(
            request.page_size, request.page_token, _category(request),
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
    def ListLocalities(self, request: Any, context: grpc.ServicerContext) -> Any:
        found, token, total = self.engine.list_localities(
            request.page_size, request.page_token, request.state, _date(request))
        return service_pb2.ListLocalitiesResponse(localities=[convert.locality(i) for i in found],
                                                  next_page_token=token, total_size=total)

    @_guarded
    def GetRuleset(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Ruleset:
        snap = self.engine.snapshot
        return convert.ruleset(snap.ruleset, snap.data.sources(), len(snap.codes))

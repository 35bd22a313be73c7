"""CodeRulesService: request messages → engine calls → response messages. No rule logic."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any

import grpc

from .. import limits
from ..engine import Engine
from ..errors import CptrulesError, InvalidInputError
from ..v1 import code_pb2, code_rules_service_pb2 as service_pb2, code_rules_service_pb2_grpc
from . import convert
from .export_stream import export_faqs
from .page_tokens import PageTokens
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


def _bounded(name: str, value: str, limit: int) -> str:
    """A free-text field within its limit; over it is refused without repeating the text."""
    if len(value) > limit:
        raise InvalidInputError(f"{name} is {len(value)} characters long; the limit is {limit}",
                                name, {"length": str(len(value)), "limit": str(limit)},
                                reason="FIELD_TOO_LONG")
    return value


def _date(request: Any) -> dt.date | None:
    d = request.date_of_service
    try:
        day = convert.from_date(d, request.HasField("date_of_service"))
    except ValueError as exc:
        raise InvalidInputError(f"date_of_service {d.year:04d}-{d.month:02d}-{d.day:02d} is not a "
                                f"calendar date: {exc}", "date_of_service", reason="INVALID_DATE") from None
    if day is not None and not limits.DATE_MIN_YEAR <= day.year <= limits.DATE_MAX_YEAR:
        raise InvalidInputError(f"date_of_service year {day.year} is outside "
                                f"{limits.DATE_MIN_YEAR}-{limits.DATE_MAX_YEAR}",
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

    def __init__(self, engine: Engine, tokens: PageTokens | None = None) -> None:
        self.engine = engine
        self.tokens = tokens or PageTokens()

    @_guarded
    def GetCode(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Code:
        return convert.code(self.engine.get_code(
            _bounded("code", request.code, limits.CODE_MAX_CHARS), _date(request),
            _bounded("modifier", request.modifier, limits.MODIFIER_MAX_CHARS),
            _bounded("zip_code", request.zip_code, limits.ZIP_MAX_CHARS),
            _bounded("locality", request.locality, limits.LOCALITY_MAX_CHARS)))

    @_guarded
    def BatchGetCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        codes = [_bounded(f"codes[{i}]", c, limits.CODE_MAX_CHARS) for i, c in enumerate(request.codes)]
        reports = self.engine.batch_get(codes, _date(request),
                                        _bounded("zip_code", request.zip_code, limits.ZIP_MAX_CHARS),
                                        _bounded("locality", request.locality, limits.LOCALITY_MAX_CHARS))
        return service_pb2.BatchGetCodesResponse(codes=[convert.code(r) for r in reports])

    def _cursor(self, token: str, scope: str) -> tuple[str, str]:
        """(after, revision) from a page token of this listing and filter; empty for the first page."""
        if not token:
            return "", ""
        cursor = self.tokens.read(token, scope)
        return cursor.after, cursor.revision

    def _next_token(self, after: str, scope: str, revision: str) -> str:
        return self.tokens.make(after, scope, revision) if after else ""

    @_guarded
    def ListCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        category = _category(request)
        after, revision = self._cursor(request.page_token, category)
        page = self.engine.list_codes(request.page_size, after, category, _date(request), revision)
        token = self._next_token(page.next_after, category, page.revision)
        return service_pb2.ListCodesResponse(codes=[convert.code(r) for r in page.reports],
                                             next_page_token=token, total_size=page.total)

    @_guarded
    def GetFaq(self, request: Any, context: grpc.ServicerContext) -> Any:
        report, entries = self.engine.faq(_bounded("code", request.code, limits.CODE_MAX_CHARS),
                                          _date(request))
        return service_pb2.Faq(code=report.code, entries=[convert.answer(e) for e in entries],
                               provenance=convert.provenance(report.provenance))

    @_guarded
    def AnswerQuestion(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Answer:
        # The engine checks the question's length before any work on it.
        return convert.answer(self.engine.answer(request.question, _date(request)))

    @_guarded
    def ListLocalities(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = _bounded("state", request.state, 8)
        scope = f"localities:{state.strip().upper()}"
        after, revision = self._cursor(request.page_token, scope)
        page = self.engine.list_localities(request.page_size, after, state, _date(request), revision)
        token = self._next_token(page.next_after, scope, page.revision)
        return service_pb2.ListLocalitiesResponse(localities=[convert.locality(i) for i in page.localities],
                                                  next_page_token=token, total_size=page.total)

    @_guarded
    def ExportFaqs(self, request: Any, context: grpc.ServicerContext) -> Any:
        codes = [_bounded(f"codes[{i}]", c, limits.CODE_MAX_CHARS) for i, c in enumerate(request.codes)]
        return export_faqs(self.engine, self.tokens, _category(request), codes, _date(request),
                           request.resume_token, context)

    @_guarded
    def SearchCodes(self, request: Any, context: grpc.ServicerContext) -> Any:
        matches = self.engine.search_codes(
            _bounded("query", request.query, limits.SEARCH_QUERY_MAX_CHARS), _category(request),
            request.page_size)
        return service_pb2.SearchCodesResponse(matches=[convert.code_match(m) for m in matches])

    @_guarded
    def GetRuleset(self, request: Any, context: grpc.ServicerContext) -> code_pb2.Ruleset:
        snap = self.engine.snapshot
        message = convert.ruleset(snap.ruleset, snap.data.sources(), len(snap.codes))
        message.today.CopyFrom(convert.to_date(self.engine.clock().isoformat()))
        return message

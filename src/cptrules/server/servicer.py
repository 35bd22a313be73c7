"""CodeRulesService: request bytes → engine calls → response bytes. No rule logic.

Most methods answer with bytes kept per snapshot (stored.py): a response computed once for a
date class is written for every day of it, and a request already answered today on this
snapshot is a lookup. The table in `method_handlers` says which methods serve bytes; any other
method of the service is served from a message-returning servicer method, as generated code does.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message_factory import GetMessageClass

from .. import limits
from ..cancellation import raise_if_abandoned
from ..engine import CodeReport, Engine, Located, Snapshot
from ..errors import CptrulesError, InvalidInputError
from ..v1 import code_rules_service_pb2 as service_pb2
from ..v1 import code_rules_service_pb2_grpc
from . import convert, status
from .export_stream import export_faqs
from .handlers import add_service, bytes_handler, message_handler
from .page_tokens import PageTokens
from .parsing import PeerLog, log_unparseable
from .status import to_status
from .stored import Stored, repeated_message

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


SERVICE = service_pb2.DESCRIPTOR.services_by_name["CodeRulesService"]


def _serialise(message: Any) -> bytes:
    """The one serialisation of every stored response: deterministic, so equal answers are
    equal bytes in every process (map fields are otherwise ordered per process)."""
    return message.SerializeToString(deterministic=True)


def _code_entry(report: CodeReport) -> Stored:
    """A code's response for every day of the report's date class."""
    return Stored(lambda day: _serialise(convert.code(report.on(day))))


class CodeRulesServicer(code_rules_service_pb2_grpc.CodeRulesServiceServicer):
    """Thin gRPC adapter over an Engine."""

    def __init__(self, engine: Engine, tokens: PageTokens | None = None,
                 peer_log: PeerLog | None = None) -> None:
        self.engine = engine
        self.tokens = tokens or PageTokens()
        # Remembered responses are this servicer's own: a page token in one is signed with its key,
        # and servers sharing a snapshot in one process must not answer with each other's tokens.
        self._own = secrets.token_bytes(8)
        self.peer_log = peer_log or PeerLog()

    # -- the method table --------------------------------------------------------

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """Every method of the service: bytes in and out where listed in `served_as_bytes`,
        otherwise the servicer method of that name on messages (UNIMPLEMENTED if none)."""
        handlers = {}
        by_bytes = self.served_as_bytes()
        for method in SERVICE.methods:
            request_class = GetMessageClass(method.input_type)
            if method.name in by_bytes:
                handlers[method.name] = bytes_handler(self._bytes_method(method.name, request_class,
                                                                         by_bytes[method.name]))
            else:
                handlers[method.name] = message_handler(getattr(self, method.name), request_class,
                                                        GetMessageClass(method.output_type),
                                                        method.client_streaming, method.server_streaming)
        return handlers

    def served_as_bytes(self) -> dict[str, Callable[[Any], bytes]]:
        """Methods answered from stored bytes: request message → response bytes."""
        return {"GetCode": self._get_code, "BatchGetCodes": self._batch_get_codes,
                "ListCodes": self._list_codes, "GetFaq": self._get_faq,
                "AnswerQuestion": self._answer_question, "GetRuleset": self._get_ruleset}

    def _bytes_method(self, name: str, request_class: Any,
                      answer: Callable[[Any], bytes]) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        """Request bytes → response bytes: by the request's bytes when this snapshot answered
        them today, else parsed (bytes that do not parse are INVALID_ARGUMENT) and answered."""
        method = f"/{SERVICE.full_name}/{name}"
        engine = self.engine

        def behaviour(raw: bytes, context: grpc.ServicerContext) -> bytes:
            snap: Snapshot = engine.snapshot
            remembered = snap.requests(name)
            key = (raw, engine.clock(), self._own)
            known = remembered.get(key)
            if known is not None:
                return known[0]
            try:
                request = request_class.FromString(raw)
            except Exception as error:  # any failure to parse is the request's fault
                log_unparseable(self.peer_log, context.peer(), method, len(raw), error)
                context.abort_with_status(status.malformed_request(method, len(raw)))
            try:
                response = answer(request)
            except CptrulesError as error:
                context.abort_with_status(to_status(error))
            except Exception:
                if context.code() is not None:  # already aborted with a status
                    raise
                log.exception("%s failed", name)
                context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")
            if engine.snapshot is snap:  # answered on the snapshot it would be kept with
                remembered.put(key, (response, len(raw)))
            return response

        behaviour.__name__ = name
        return behaviour

    # -- answers as bytes -------------------------------------------------------

    def _code_bytes(self, located: Located) -> bytes:
        return self.engine.derived(located, "Code", _code_entry).on(located.day)

    def _get_code(self, request: Any) -> bytes:
        return self._code_bytes(self.engine.locate(
            _bounded("code", request.code, limits.CODE_MAX_CHARS), _date(request),
            _bounded("modifier", request.modifier, limits.MODIFIER_MAX_CHARS),
            _bounded("zip_code", request.zip_code, limits.ZIP_MAX_CHARS),
            _bounded("locality", request.locality, limits.LOCALITY_MAX_CHARS)))

    def _codes_bytes(self, located: list[Located], budget: int = 0) -> list[bytes]:
        """Each located code's bytes, in order; long work stops when the caller has gone, and with
        a `budget` the list stops before its bytes would pass it (at least one code is given)."""
        pieces: list[bytes] = []
        size = 0
        for index, item in enumerate(located):
            if index % 25 == 0:
                raise_if_abandoned()
            piece = self._code_bytes(item)
            size += len(piece) + 8  # the field's tag and length
            if budget and pieces and size > budget:
                break
            pieces.append(piece)
        return pieces

    def _batch_get_codes(self, request: Any) -> bytes:
        codes = [_bounded(f"codes[{i}]", c, limits.CODE_MAX_CHARS) for i, c in enumerate(request.codes)]
        located = self.engine.locate_batch(codes, _date(request),
                                           _bounded("zip_code", request.zip_code, limits.ZIP_MAX_CHARS),
                                           _bounded("locality", request.locality, limits.LOCALITY_MAX_CHARS))
        return repeated_message(1, self._codes_bytes(located))

    def _list_codes(self, request: Any) -> bytes:
        category = _category(request)
        after, revision = self._cursor(request.page_token, category)
        page = self.engine.locate_page(request.page_size, after, category, _date(request), revision)
        # A page ends early rather than pass what a client receives by default (AIP-158 allows
        # fewer results than asked): 1,000 surgical codes are nearly 6 MB.
        pieces = self._codes_bytes(page.items, limits.PAGE_MAX_BYTES)
        next_after = page.items[len(pieces) - 1].code if len(pieces) < len(page.items) else page.next_after
        token = self._next_token(next_after, category, page.revision)
        tail = _serialise(service_pb2.ListCodesResponse(next_page_token=token, total_size=page.total))
        return repeated_message(1, pieces) + tail

    def _get_faq(self, request: Any) -> bytes:
        located = self.engine.locate(_bounded("code", request.code, limits.CODE_MAX_CHARS), _date(request))
        snap = located.snapshot

        def build(report: CodeReport) -> bytes:
            entries = self.engine.faq_entries(report, snap)
            return _serialise(service_pb2.Faq(code=report.code, entries=[convert.answer(e) for e in entries],
                                              provenance=convert.provenance(report.provenance)))

        # FAQ texts may spell the date out or test it: kept per day, not per class.
        return self.engine.derived(located, "Faq", build, per_day=True)

    def _answer_question(self, request: Any) -> bytes:
        # The engine checks the question's length before any work on it.
        return _serialise(convert.answer(self.engine.answer(request.question, _date(request))))

    def _get_ruleset(self, request: Any) -> bytes:
        snap = self.engine.snapshot
        message = convert.ruleset(snap.ruleset, snap.data.sources(), len(snap.codes))
        message.today.CopyFrom(convert.to_date(self.engine.clock().isoformat()))
        return _serialise(message)

    def _cursor(self, token: str, scope: str) -> tuple[str, str]:
        """(after, revision) from a page token of this listing and filter; empty for the first page."""
        if not token:
            return "", ""
        cursor = self.tokens.read(token, scope)
        return cursor.after, cursor.revision

    def _next_token(self, after: str, scope: str, revision: str) -> str:
        return self.tokens.make(after, scope, revision) if after else ""

    # -- answers as messages -------------------------------------------------------

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
    def ListLocalities(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = _bounded("state", request.state, 8)
        scope = f"localities:{state.strip().upper()}"
        after, revision = self._cursor(request.page_token, scope)
        page = self.engine.list_localities(request.page_size, after, state, _date(request), revision)
        token = self._next_token(page.next_after, scope, page.revision)
        return service_pb2.ListLocalitiesResponse(localities=[convert.locality(i) for i in page.localities],
                                                  next_page_token=token, total_size=page.total)


def add_to_server(servicer: CodeRulesServicer, server: grpc.Server) -> None:
    """Register the service's handlers (see `CodeRulesServicer.method_handlers`)."""
    add_service(server, SERVICE.full_name, servicer.method_handlers())

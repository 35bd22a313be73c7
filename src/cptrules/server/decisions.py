"""The decision log (opt-in): one JSON line per answer — decision id, time, method, request,
date of service, ruleset revision, data releases, the rules that fired (id, file, line) and
hashes of the response — so an answer given months ago can be explained and re-checked.

Recording never slows or fails a request: the handler only puts what it already has (request
bytes, the response message or its serialised bytes) on a bounded queue; a background thread
parses, hashes and writes to a rotating file. When the queue is full the record is dropped and
counted, never waited for.

Two hashes are kept: `response_sha256` of the response's deterministic bytes, and
`answer_sha256` of the same without what differs between revisions or processes alone (the
revision stamp in provenance, signed page tokens). `cptrules replay` compares the latter.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import logging.handlers
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from ..v1 import code_rules_service_pb2
from .handlers import rewrap

log = logging.getLogger(__name__)

_SERVICE = code_rules_service_pb2.DESCRIPTOR.services_by_name["CodeRulesService"]
# Every RPC that answers something about codes; GetRuleset describes the server, not a decision.
RECORDED = {f"/{_SERVICE.full_name}/{m.name}": m for m in _SERVICE.methods if m.name != "GetRuleset"}
# Fields that differ between revisions or server processes while the answer is the same.
_NOT_ANSWER = frozenset({"ruleset_version", "next_page_token"})


def message_classes(method: str) -> tuple[type[Message], type[Message]]:
    """The request and response message classes of a recorded method."""
    desc = RECORDED[method]
    return (message_factory.GetMessageClass(desc.input_type),
            message_factory.GetMessageClass(desc.output_type))


def _strip(message: Message) -> None:
    for field, value in message.ListFields():
        if field.name in _NOT_ANSWER:
            message.ClearField(field.name)
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in (value if field.is_repeated else [value]):
                _strip(item)


def answer_sha256(response: Message) -> str:
    """SHA-256 of the response without revision stamps and page tokens."""
    copy = type(response)()
    copy.CopyFrom(response)
    _strip(copy)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _provenances(message: Message) -> list[Message]:
    """Every Provenance inside a response (one per code or answer)."""
    found = []
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        for item in (value if field.is_repeated else [value]):
            if field.message_type.name == "Provenance":
                found.append(item)
            else:
                found.extend(_provenances(item))
    return found


@dataclass(frozen=True)
class Pending:
    """What the request path hands over: no parsing or hashing done yet."""

    decision_id: str
    time: dt.datetime
    method: str
    request: Any          # bytes or a message
    response: Any         # bytes or a message
    today: dt.date
    revision: str
    request_id: str


def build_record(item: Pending) -> dict[str, Any]:
    """The JSON record of one decision (runs on the writer thread)."""
    request_class, response_class = message_classes(item.method)
    raw = item.request if isinstance(item.request, bytes) else item.request.SerializeToString()
    request = request_class.FromString(raw)
    response = (response_class.FromString(item.response) if isinstance(item.response, bytes)
                else item.response)
    body = response.SerializeToString(deterministic=True)
    provenances = _provenances(response)
    day = item.today
    if request.HasField("date_of_service"):
        d = request.date_of_service
        day = dt.date(d.year, d.month, d.day)
    releases = sorted({r.key for p in provenances for r in p.data_releases})
    fired = [{"rule_id": f.rule_id, "file": f.file, "line": f.line}
             for p in provenances for f in p.fired_rules]
    revision = next((p.ruleset_version for p in provenances if p.ruleset_version), item.revision)
    return {
        "decision_id": item.decision_id, "time": item.time.isoformat(), "method": item.method,
        "request_id": item.request_id,
        "request": json_format.MessageToDict(request, preserving_proto_field_name=True),
        "request_bytes": base64.b64encode(raw).decode(), "date_of_service": day.isoformat(),
        "revision": revision, "data_releases": releases, "fired_rules": fired,
        "response_sha256": hashlib.sha256(body).hexdigest(), "answer_sha256": answer_sha256(response),
    }


class DecisionLog:
    """A bounded queue and one writer thread appending JSON lines to a rotating file."""

    def __init__(self, path: Path, max_bytes: int = 100 << 20, backups: int = 5,
                 queue_size: int = 10_000, on_drop: Callable[[], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._on_drop = on_drop
        self._queue: queue.Queue[Pending | None] = queue.Queue(maxsize=queue_size)
        self._file = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes,
                                                          backupCount=backups, encoding="utf-8")
        self._file.setFormatter(logging.Formatter("%(message)s"))
        self._thread = threading.Thread(target=self._run, name="cptrules-decisions", daemon=True)
        self._thread.start()

    def offer(self, item: Pending) -> None:
        """Queue a decision; when the queue is full, drop it and count it. Never blocks."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                line = json.dumps(build_record(item), separators=(",", ":"))
            except Exception:  # a record that cannot be built must not stop the others
                self.failed += 1
                log.exception("decision record failed", extra={"method": item.method})
                continue
            self._file.emit(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))
            self.written += 1

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` seconds), then close the file."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._file.close()


class DecisionInterceptor(grpc.ServerInterceptor):
    """Offers every successful answer to the decision log; sits before request parsing, so it
    sees the request's bytes, and accepts a response as a message or as serialised bytes."""

    def __init__(self, decisions: DecisionLog, today: Callable[[], dt.date],
                 revision: Callable[[], str]) -> None:
        self.decisions = decisions
        self.today = today
        self.revision = revision

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        method = details.method
        if handler is None or method not in RECORDED or handler.unary_unary is None:
            return handler

        def wrap(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def recorded(request: Any, context: grpc.ServicerContext) -> Any:
                revision, today = self.revision(), self.today()
                response = behaviour(request, context)
                if response is not None and context.code() in (None, grpc.StatusCode.OK):
                    self.decisions.offer(Pending(
                        uuid.uuid4().hex, dt.datetime.now(dt.timezone.utc), method, request,
                        response, today, revision,
                        structlog.contextvars.get_contextvars().get("request_id", "")))
                return response

            return recorded

        return rewrap(handler, wrap)

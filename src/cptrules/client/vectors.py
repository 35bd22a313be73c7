"""Conformance vectors: requests with the responses one server gave, as JSON lines, replayed
against another server (a client team's CI, two replicas, two versions) to list what differs.

Each line is one vector: {"method", "request", "response" | "status", "revision", "releases",
"today"}. Requests and responses are the proto messages in their canonical JSON form, so any
client can read them; the revision, data releases and today say what produced the answer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.type import date_pb2

from ..v1 import code_rules_service_pb2 as service_pb2
from .channel import ClientSetupError

SERVICE = service_pb2.DESCRIPTOR.services_by_name["CodeRulesService"]
TIMEOUT = 60.0  # seconds per call: only so that a server that never answers is reported


def _types(method: str) -> tuple[Any, Any]:
    found = SERVICE.methods_by_name.get(method)
    if found is None:
        raise KeyError(method)
    return (message_factory.GetMessageClass(found.input_type),
            message_factory.GetMessageClass(found.output_type))


def _json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def requests_for(codes: Iterable[str], questions: Iterable[str],
                 day: dt.date | None = None) -> list[tuple[str, Any]]:
    """GetCode and GetFaq for each code, AnswerQuestion for each question, all on `day` if given."""
    when = {"date_of_service": date_pb2.Date(year=day.year, month=day.month, day=day.day)} if day else {}
    pairs: list[tuple[str, Any]] = []
    for code in codes:
        pairs.append(("GetCode", service_pb2.GetCodeRequest(code=code, **when)))
        pairs.append(("GetFaq", service_pb2.GetFaqRequest(code=code, **when)))
    for question in questions:
        pairs.append(("AnswerQuestion", service_pb2.AnswerQuestionRequest(question=question, **when)))
    return pairs


class Unreachable(Exception):
    """The server could not be asked (unavailable, no answer in time, or refused our credentials):
    no vector is written and no difference reported."""


def _call(channel: grpc.Channel, method: str, request: Any, metadata: Any) -> dict[str, Any]:
    """{"response": …} or, for a refused call, {"status": CODE, "message": details}."""
    _, response_type = _types(method)
    call = channel.unary_unary(f"/{SERVICE.full_name}/{method}",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_type.FromString)
    try:
        return {"response": _json(call(request, timeout=TIMEOUT, metadata=metadata))}
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                            grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            raise Unreachable(f"{method}: {error.code().name}: {error.details() or ''}") from None
        return {"status": error.code().name, "message": error.details() or ""}


@dataclass(frozen=True)
class ServerIdentity:
    """What produced an answer: ruleset revision, data releases, today."""

    revision: str
    releases: tuple[str, ...]
    today: str

    @classmethod
    def of(cls, channel: grpc.Channel, metadata: Any) -> ServerIdentity:
        answer = _call(channel, "GetRuleset", service_pb2.GetRulesetRequest(), metadata)
        if "response" not in answer:
            raise Unreachable(f"GetRuleset: {answer['status']}: {answer['message']}")
        ruleset = answer["response"]
        today = ruleset.get("today")
        return cls(ruleset["revision"], tuple(r["key"] for r in ruleset.get("data_releases", [])),
                   f"{today['year']:04d}-{today['month']:02d}-{today['day']:02d}" if today else "")


def export(channel: grpc.Channel, requests: list[tuple[str, Any]], target: Path,
           metadata: Any = ()) -> int:
    """Ask the server every request and write one vector per line; returns the count."""
    identity = ServerIdentity.of(channel, metadata)
    lines = []
    for method, request in requests:
        outcome = _call(channel, method, request, metadata)
        lines.append(json.dumps({"method": method, "request": _json(request), **outcome,
                                 "revision": identity.revision, "releases": list(identity.releases),
                                 "today": identity.today}, sort_keys=True, ensure_ascii=False))
    target.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


@dataclass(frozen=True)
class Vector:
    line: int
    method: str
    request: Any
    expected: dict[str, Any]
    identity: ServerIdentity


def read_vectors(path: Path) -> Iterator[Vector]:
    """The vectors of a file; ClientSetupError naming the line for anything that is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientSetupError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            request_type, _ = _types(record["method"])
            request = json_format.ParseDict(record["request"], request_type())
            expected = ({"response": record["response"]} if "response" in record
                        else {"status": record["status"], "message": record.get("message", "")})
            identity = ServerIdentity(record.get("revision", ""), tuple(record.get("releases", ())),
                                      record.get("today", ""))
        except (ValueError, KeyError, TypeError, AttributeError, json_format.ParseError) as exc:
            raise ClientSetupError(f"{path}:{number}: not a conformance vector ({type(exc).__name__}: "
                                   f"{exc})") from None
        yield Vector(number, record["method"], request, expected, identity)


def differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Every place two JSON values differ, as `path: expected → actual`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual)):
            found += differences(expected.get(key), actual.get(key), f"{where}.{key}" if where else key)
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = []
        for index in range(max(len(expected), len(actual))):
            found += differences(expected[index] if index < len(expected) else None,
                                 actual[index] if index < len(actual) else None, f"{where}[{index}]")
        return found
    if expected != actual:
        return [f"{where or '(whole)'}: {_short(expected)} → {_short(actual)}"]
    return []


def _short(value: Any, limit: int = 120) -> str:
    text = "(absent)" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class VerifyReport:
    """What a replay found: vectors checked, those that differ (with where), and notes."""

    checked: int = 0
    differing: list[tuple[Vector, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self, shown: int = 20) -> list[str]:
        out = list(self.notes)
        for vector, found in self.differing:
            request = json.dumps(_json(vector.request), ensure_ascii=False)
            out.append(f"line {vector.line}: {vector.method} {request}: {len(found)} difference(s)")
            out += [f"  {item}" for item in found[:shown]]
            if len(found) > shown:
                out.append(f"  … and {len(found) - shown} more")
        out.append(f"{self.checked} vectors, {len(self.differing)} differ")
        return out


def verify(channel: grpc.Channel, path: Path, metadata: Any = ()) -> VerifyReport:
    """Replay every vector of `path` against the server and compare the answers."""
    vectors = list(read_vectors(path))
    report = VerifyReport()
    server = ServerIdentity.of(channel, metadata)
    recorded = {v.identity for v in vectors}
    for identity in sorted(recorded, key=lambda i: (i.revision, i.today)):
        if identity.revision and identity.revision != server.revision:
            report.notes.append(f"note: vectors from ruleset {identity.revision}, server runs {server.revision}")
        if identity.releases and identity.releases != server.releases:
            report.notes.append(f"note: vectors from data {', '.join(identity.releases)}, server has "
                                f"{', '.join(server.releases)}")
        if identity.today and identity.today != server.today:
            report.notes.append(f"note: vectors recorded with today {identity.today}, server's today is "
                                f"{server.today} (pin it with --today)")
    for vector in vectors:
        actual = _call(channel, vector.method, vector.request, metadata)
        found = differences(vector.expected, actual)
        report.checked += 1
        if found:
            report.differing.append((vector, found))
    return report

"""`cptrules replay LOG`: the decision log's requests asked again of the current rules and data,
over a real server in this process, and the answers that changed.

Each record's request bytes are sent as they were, except that a request that named no date of
service gets the date it was answered for, so a replay on another day compares like with like.
Answers are compared by `answer_sha256` (revision stamps and page tokens left out). A request
with a page token cannot be replayed (tokens expire with the server that issued them): skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ..engine import Engine
from .app import build_server
from .decisions import RECORDED, answer_sha256, message_classes


@dataclass
class Change:
    decision_id: str
    method: str
    request: dict[str, Any]
    was: str
    now: str  # a hash, or "error CODE: details"


@dataclass
class ReplayReport:
    replayed: int = 0
    unchanged: int = 0
    changed: list[Change] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)      # "decision id: why"
    unreadable: list[str] = field(default_factory=list)   # "file:line: why"


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) per line; a problem instead of a record for a line that is not one."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if record["method"] not in RECORDED:
                    raise KeyError(f"method {record['method']!r} is not recorded")
                base64.b64decode(record["request_bytes"], validate=True)
                dt.date.fromisoformat(record["date_of_service"])
                str(record["answer_sha256"])
            except (ValueError, KeyError, TypeError) as error:
                yield number, f"not a decision record ({type(error).__name__}: {error})"
                continue
            yield number, record


def _request_bytes(record: dict[str, Any]) -> bytes | None:
    """The request to send: the recorded one, with the recorded date where it named none;
    None for a request that cannot be replayed."""
    request_class, _ = message_classes(record["method"])
    request = request_class.FromString(base64.b64decode(record["request_bytes"]))
    if getattr(request, "page_token", ""):
        return None
    if "date_of_service" in request.DESCRIPTOR.fields_by_name and not request.HasField("date_of_service"):
        day = dt.date.fromisoformat(record["date_of_service"])
        request.date_of_service.year, request.date_of_service.month, request.date_of_service.day = (
            day.year, day.month, day.day)
    return request.SerializeToString()


def replay(paths: list[Path], engine: Engine, timeout: float = 60.0) -> ReplayReport:
    """Replay every record of the decision log files against `engine`."""
    report = ReplayReport()
    built = build_server(engine, "127.0.0.1:0")
    built.grpc_server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            for path in paths:
                for number, record in read_records(path):
                    if isinstance(record, str):
                        report.unreadable.append(f"{path}:{number}: {record}")
                        continue
                    _replay_one(channel, record, report, timeout)
    finally:
        built.grpc_server.stop(None)
    return report


def _replay_one(channel: grpc.Channel, record: dict[str, Any], report: ReplayReport,
                timeout: float) -> None:
    method = record["method"]
    body = _request_bytes(record)
    if body is None:
        report.skipped.append(f"{record.get('decision_id', '?')}: a page token expires with its server")
        return
    _, response_class = message_classes(method)
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None,
                               _registered_method=False)
    report.replayed += 1
    try:
        now = answer_sha256(response_class.FromString(call(body, timeout=timeout)))
    except grpc.RpcError as error:
        now = f"error {error.code().name}: {error.details()}"
    if now == record["answer_sha256"]:
        report.unchanged += 1
    else:
        report.changed.append(Change(record.get("decision_id", ""), method, record.get("request", {}),
                                     record["answer_sha256"], now))


def format_report(report: ReplayReport) -> str:
    lines = [f"changed {c.decision_id} {c.method.rsplit('/', 1)[-1]} "
             f"{json.dumps(c.request, sort_keys=True)}: {c.was[:12]} → {c.now[:80]}"
             for c in report.changed]
    lines += [f"skipped {s}" for s in report.skipped]
    lines += [f"unreadable {u}" for u in report.unreadable]
    lines.append(f"{report.replayed} replayed: {report.unchanged} unchanged, {len(report.changed)} "
                 f"changed; {len(report.skipped)} skipped; {len(report.unreadable)} unreadable lines")
    return "\n".join(lines)

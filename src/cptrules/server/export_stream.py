"""ExportFaqs: a code's FAQ set at a time, produced only as fast as the client reads.

The stream is a generator: grpc pulls the next set only when the previous one has been handed
to the transport, so a slow reader holds the export back (HTTP/2 flow control) instead of
making the server build and buffer thousands of sets. The whole export answers from the one
snapshot that was serving when it started, and each set carries a resume token: the code it
ends with, bound to the request and the ruleset revision, signed like a page token.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import logging
import struct
from collections.abc import Iterator, Sequence

import grpc

from ..engine import Engine, Snapshot
from ..errors import CptrulesError
from ..v1 import code_pb2, code_rules_service_pb2 as service_pb2
from . import convert
from .page_tokens import PageTokens
from .status import to_status

log = logging.getLogger(__name__)


def content_hash(entries: Sequence[code_pb2.Answer]) -> str:
    """SHA-256 over each entry's deterministic serialisation, length-prefixed, in order: the
    same answers always hash alike, whatever process or map order produced them."""
    digest = hashlib.sha256()
    for entry in entries:
        data = entry.SerializeToString(deterministic=True)
        digest.update(struct.pack(">Q", len(data)))
        digest.update(data)
    return digest.hexdigest()


def request_scope(category: str, codes: Sequence[str], day: dt.date) -> str:
    """What a resume token is bound to besides the revision: the selection and the date (fixed
    when the stream starts, so a resumed export answers for the same day)."""
    selection = hashlib.sha256("\n".join(codes).encode()).hexdigest()[:16] if codes else ""
    return f"export:{category}:{selection}:{day.isoformat()}"


def export_faqs(engine: Engine, tokens: PageTokens, category: str, texts: Sequence[str],
                dos: dt.date | None, resume_token: str, context: grpc.ServicerContext
                ) -> Iterator[service_pb2.FaqSet]:
    """Check the whole request (errors are raised here, before anything is streamed), then
    return the stream of one FaqSet per code in code order."""
    snap, codes = engine.export_selection(category, texts)
    day = dos or engine.clock()
    scope = request_scope(category, codes if texts else (), day)
    start = 0
    if resume_token:
        after = tokens.read_current(resume_token, scope, snap.ruleset.revision, "resume_token").after
        start = bisect.bisect_right(codes, after)
    return _guarded(_stream(engine, tokens, snap, codes, start, day, scope, context), context)


def _stream(engine: Engine, tokens: PageTokens, snap: Snapshot, codes: Sequence[str], start: int,
            day: dt.date, scope: str, context: grpc.ServicerContext) -> Iterator[service_pb2.FaqSet]:
    total = len(codes)
    revision = snap.ruleset.revision
    for position in range(start, total):
        if not context.is_active():  # the client cancelled or went away: stop at once
            return
        code = codes[position]
        report, entries = engine.faq(code, day, snapshot=snap)
        answers = [convert.answer(e) for e in entries]
        yield service_pb2.FaqSet(code=report.code, entries=answers,
                                 provenance=convert.provenance(report.provenance),
                                 content_hash=content_hash(answers),
                                 resume_token=tokens.make(code, scope, revision),
                                 position=position + 1, total=total)


def _guarded(sets: Iterator[service_pb2.FaqSet], context: grpc.ServicerContext
             ) -> Iterator[service_pb2.FaqSet]:
    """A failure mid-stream ends the stream with a status, as a unary call's would."""
    try:
        yield from sets
    except CptrulesError as error:
        context.abort_with_status(to_status(error))
    except Exception:
        if context.code() is not None:
            raise
        log.exception("ExportFaqs failed")
        context.abort(grpc.StatusCode.INTERNAL, "internal error; it has been logged")

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
from collections.abc import Iterator, Sequence

import grpc

from .. import limits
from ..engine import Engine
from ..errors import CptrulesError, InvalidInputError
from ..export import faqsets
from ..v1 import code_rules_service_pb2 as service_pb2
from . import convert
from .page_tokens import PageTokens
from .status import to_status

log = logging.getLogger(__name__)


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
    if len(texts) > limits.EXPORT_MAX_CODES:
        raise InvalidInputError(f"at most {limits.EXPORT_MAX_CODES} codes per export", "codes",
                                {"count": str(len(texts)), "limit": str(limits.EXPORT_MAX_CODES)})
    selection = faqsets.select(engine, texts or None, category, dos)
    scope = request_scope(category, selection.codes if texts else (), selection.day)
    after = ""
    if resume_token:
        revision = selection.snapshot.ruleset.revision
        after = tokens.read_current(resume_token, scope, revision, "resume_token").after
    return _guarded(_stream(engine, tokens, selection, after, scope, context), context)


def _stream(engine: Engine, tokens: PageTokens, selection: faqsets.Selection, after: str, scope: str,
            context: grpc.ServicerContext) -> Iterator[service_pb2.FaqSet]:
    total = len(selection.codes)
    revision = selection.snapshot.ruleset.revision
    position = bisect.bisect_right(selection.codes, after) if after else 0
    for found in faqsets.produce(engine, selection, after):
        if not context.is_active():  # the client cancelled or went away: stop at once
            return
        position += 1
        yield service_pb2.FaqSet(code=found.code, entries=[convert.answer(e) for e in found.entries],
                                 provenance=convert.provenance(found.report.provenance),
                                 content_hash=found.content_hash,
                                 resume_token=tokens.make(found.code, scope, revision),
                                 position=position, total=total)


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

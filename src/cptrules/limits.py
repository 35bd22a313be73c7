"""Input bounds, in one place; the proto comments document the same numbers."""

QUESTION_MAX_CHARS = 1000
BATCH_MAX_CODES = 100
# An explicit list in one export: what fits in a request (64 KiB holds about 9,000 codes);
# a category or every code (about 20,000) needs no list.
EXPORT_MAX_CODES = 5_000
PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 1000
# A page stops early before its codes pass this, so a client's default 4 MiB receive limit holds it.
PAGE_MAX_BYTES = 3_500_000
CODE_MAX_CHARS = 64
ANSWER_MAX_CODES = 3
MODIFIER_MAX_CHARS = 8
PAGE_TOKEN_MAX_CHARS = 512
ZIP_MAX_CHARS = 10          # 12345 or 12345-6789
LOCALITY_MAX_CHARS = 16     # MAC-locality, e.g. 01112-05
# A request message larger than this is refused by the transport before it is parsed; every
# request within the field limits above fits in a few kilobytes.
REQUEST_MAX_BYTES = 64 * 1024
# How much of a piece of text the service repeats back: an Answer's question, error messages.
ECHO_MAX_CHARS = 120
# Years a date of service may have, wherever the date comes from (a request field or a question).
DATE_MIN_YEAR = 1990
DATE_MAX_YEAR = 2100


def echo(text: str) -> str:
    """At most ECHO_MAX_CHARS of `text`, marked with … when cut."""
    return text if len(text) <= ECHO_MAX_CHARS else text[:ECHO_MAX_CHARS - 1] + "…"

# Answer templates (answers/sandbox.py): what one render may spend. The default
# templates use a few hundred steps and write under 2,000 characters.
TEMPLATE_MAX_STEPS = 100_000            # loop iterations, range items, calls and filter uses
TEMPLATE_MAX_VALUE_CHARS = 100_000      # the largest string or list one operation may build
TEMPLATE_MAX_PRODUCED_CHARS = 1_000_000  # text built or written by one render, all buffers together
TEMPLATE_MAX_OUTPUT_CHARS = 100_000     # the answer text itself
TEMPLATE_MAX_CALL_DEPTH = 32            # macros calling macros
TEMPLATE_MAX_INT_BITS = 1024            # integers built by * and **

# SearchCodes: the query's length and the page of matches (0 → the default).
SEARCH_QUERY_MAX_CHARS = 200
SEARCH_PAGE_SIZE_DEFAULT = 10
SEARCH_PAGE_SIZE_MAX = 50

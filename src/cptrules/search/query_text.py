"""A SearchCodes query as the index reads it: NFKC-normalised, within the length limit.

The limit is checked twice. On the text as sent, before any work on it; and on the text
after normalising, because NFKC can lengthen it (U+FDFA becomes 18 characters), so a query
within the limit as sent could otherwise reach the index many times longer.
"""

from __future__ import annotations

from .. import limits
from ..errors import InvalidInputError
from ..questions.matcher import normalise_question


def _too_long(length: int, after: str) -> InvalidInputError:
    limit = limits.SEARCH_QUERY_MAX_CHARS
    return InvalidInputError(f"query is {length} characters long{after}; the limit is {limit}", "query",
                             {"length": str(length), "limit": str(limit)}, reason="FIELD_TOO_LONG")


def search_query(query: str) -> str:
    """The normalised query; InvalidInputError (field query) when it is too long, as sent or
    normalised, or holds no letter or digit."""
    if len(query) > limits.SEARCH_QUERY_MAX_CHARS:
        raise _too_long(len(query), "")
    text = normalise_question(query)
    if len(text) > limits.SEARCH_QUERY_MAX_CHARS:
        raise _too_long(len(text), " after Unicode NFKC normalisation")
    if not any(ch.isalnum() for ch in text):
        raise InvalidInputError("query must hold at least one letter or digit", "query", reason="EMPTY_QUERY")
    return text

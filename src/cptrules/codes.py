"""Code text normalisation: the one place that turns user text into a code key.

Which format a code has (Category I, III, HCPCS ...) is decided by the category
rules in rules/category.yaml, not here; this module only cleans the text.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import InvalidInputError, MalformedCodeError
from .limits import CODE_MAX_CHARS

_PREFIX = re.compile(r"^(?:CPT|HCPCS|CODE)\s*[®#:]*\s*", re.IGNORECASE)
_SHAPE = re.compile(r"^[0-9A-Z]{5}$")


def normalise_code(text: str) -> str:
    """Return the canonical five-character key, or raise for text that cannot be a code.

    Accepts case differences, surrounding space and a leading "CPT"/"HCPCS"/"code"
    label; a trailing modifier ("27447-RT") is not a code and is refused.
    """
    if len(text) > CODE_MAX_CHARS:
        raise InvalidInputError(
            f"a code is at most {CODE_MAX_CHARS} characters", "code", {"length": str(len(text))}
        )
    cleaned = unicodedata.normalize("NFKC", text).strip().upper()
    cleaned = _PREFIX.sub("", cleaned).strip()
    if not cleaned:
        raise InvalidInputError("no code was given", "code")
    if not _SHAPE.match(cleaned):
        raise MalformedCodeError(text.strip())
    return cleaned

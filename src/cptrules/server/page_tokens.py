"""Signed page tokens (AIP-158): the engine's listing cursor, made opaque and tamper-evident.

A token carries the last code of the previous page, the category filter and the ruleset
revision, signed with a key that lives only as long as the server process (AIP-158 lets
tokens expire). Anything that is not a token this process made is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from ..errors import InvalidInputError
from ..limits import PAGE_TOKEN_MAX_CHARS

_SIGNATURE_CHARS = 32


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts, on which revision."""

    after: str
    revision: str


def _invalid(field: str = "page_token") -> InvalidInputError:
    return InvalidInputError(f"{field} is invalid, expired, or belongs to another ruleset revision "
                             "or request; start again without it", field,
                             reason="INVALID_PAGE_TOKEN")


class PageTokens:
    """Makes and reads page tokens for one server process."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:_SIGNATURE_CHARS]

    def make(self, after: str, category: str, revision: str) -> str:
        payload = json.dumps({"a": after, "c": category, "r": revision},
                             separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + self._sign(payload)

    def read(self, token: str, category: str, field: str = "page_token") -> Cursor:
        """The cursor in a token made by this process for this filter; raises otherwise, naming
        `field` (the request field the token came in)."""
        if len(token) > PAGE_TOKEN_MAX_CHARS or not token.isascii():
            raise _invalid(field)
        body, _, signature = token.rpartition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, binascii.Error):
            raise _invalid(field) from None
        # Compare bytes: a str holding non-ASCII characters makes compare_digest raise.
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise _invalid(field)
        data = json.loads(payload)  # signed by us, so well-formed
        if not isinstance(data, dict) or data.get("c") != category:
            raise _invalid(field)
        return Cursor(str(data["a"]), str(data["r"]))

    def read_current(self, token: str, category: str, revision: str, field: str) -> Cursor:
        """As `read`, and refused unless the token was made on `revision`."""
        cursor = self.read(token, category, field)
        if cursor.revision != revision:
            raise _invalid(field)
        return cursor

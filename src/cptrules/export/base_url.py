"""The address a site is published at, as sitemap.xml needs it: checked and normalised once.

Search engines read a sitemap's <loc> values as absolute URLs of one site, so the base must be
an http(s) URL with a host, and every page's address is the base plus the page's path: a query
or fragment in the base would end up in the middle of each address, and a missing or doubled
trailing slash would join the path wrongly.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..errors import InvalidInputError

# The sitemap protocol allows addresses under 2,048 characters; the pages' own paths need room.
BASE_URL_MAX_CHARS = 1024
# Characters RFC 3986 allows in a URI (unreserved, reserved and percent-escapes).
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def site_base_url(text: str) -> str:
    """The base URL with a lower-case scheme and host and exactly one trailing slash;
    InvalidInputError (field base_url) saying what is wrong otherwise."""
    def refuse(problem: str) -> InvalidInputError:
        shown = text if len(text) <= 80 else text[:79] + "…"
        return InvalidInputError(f"base URL {shown!r} {problem}", "base_url", reason="INVALID_BASE_URL")

    if len(text) > BASE_URL_MAX_CHARS:
        raise refuse(f"is longer than {BASE_URL_MAX_CHARS} characters")
    if not _URI_CHARS.match(text):
        raise refuse("holds characters a URL cannot (spaces, quotes, <, > or non-ASCII): percent-encode them")
    if _BAD_PERCENT.search(text):
        raise refuse("has a % that is not followed by two hex digits")
    try:
        parts = urlsplit(text)
    except ValueError:  # unbalanced IPv6 brackets, e.g. "http://["
        raise refuse("has a host urlsplit cannot read (an unclosed [ or ])") from None
    if parts.scheme.lower() not in ("http", "https") or not text.lower().startswith(parts.scheme.lower() + "://"):
        raise refuse("is not an absolute http:// or https:// URL, e.g. https://codes.example.org/")
    if "?" in text or "#" in text:
        raise refuse("has a query or fragment (? or #); give the folder the site is published in")
    if parts.username is not None or parts.password is not None:
        raise refuse("holds a user name or password")
    if not parts.hostname:
        raise refuse("has no host name")
    try:
        port = parts.port
    except ValueError:
        raise refuse("has a port that is not a number from 0 to 65535") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"  # IPv6 keeps its brackets
    netloc = host + (f":{port}" if port is not None else "")
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}/"

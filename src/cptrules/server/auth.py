"""Bearer-token authentication: `authorization: Bearer <token>` checked against a file of
SHA-256 hashes of the tokens allowed (`sha256:<64 hex>` per line, `#` comments, blank lines).

The file holds no secret a reader could replay. It is read again when it changes (checked at
most once a second, on the next call) and on SIGHUP; a file that no longer parses is refused
with its line and the tokens read before keep working. Hashes are compared in constant time,
and tokens are never logged. Health checking is exempt (probes carry no token); reflection is
exempt unless configured otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from ..errors import CptrulesError
from . import status
from .handlers import rewrap

log = logging.getLogger(__name__)

HEALTH_PREFIX = "/grpc.health.v1.Health/"
REFLECTION_PREFIXES = ("/grpc.reflection.v1alpha.ServerReflection/",
                       "/grpc.reflection.v1.ServerReflection/")
_LINE = re.compile(r"sha256:([0-9a-fA-F]{64})")
_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)
CHECK_INTERVAL = 1.0  # seconds between looks at the file's modification time


class TokenFileError(CptrulesError):
    """The token file cannot be read or a line is not `sha256:<64 hex digits>`."""

    reason = "TOKEN_FILE_INVALID"


def token_hash(token: str) -> str:
    """The line a token file holds for `token`."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def read_token_file(path: Path) -> tuple[bytes, ...]:
    """The token hashes the file lists; TokenFileError naming file:line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TokenFileError(f"{path}: cannot read the token file: {error}", {"file": str(path)}) from None
    hashes = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        found = _LINE.fullmatch(line)
        if not found:
            raise TokenFileError(f"{path}:{number}: expected sha256:<64 hex digits>, the SHA-256 of a "
                                 "token (the token itself never goes in this file)",
                                 {"file": str(path), "line": str(number)})
        hashes.append(bytes.fromhex(found.group(1)))
    if not hashes:
        raise TokenFileError(f"{path}: the token file lists no token hash, so nobody could call",
                             {"file": str(path)})
    return tuple(hashes)


class TokenSet:
    """The allowed token hashes, reloaded when the file changes or when asked."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self._hashes = read_token_file(path)
        self._stamp = self._file_stamp()
        self._checked = clock()
        self._lock = threading.Lock()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def reload(self) -> bool:
        """Read the file again; on a problem keep the tokens read before and log it."""
        with self._lock:
            self._stamp = self._file_stamp()
            try:
                self._hashes = read_token_file(self.path)
            except TokenFileError as error:
                log.error("token file refused, keeping the tokens read before",
                          extra={"problem": error.message})
                return False
        log.info("token file loaded", extra={"file": str(self.path), "tokens": len(self._hashes)})
        return True

    def _maybe_reload(self) -> None:
        now = self.clock()
        if now - self._checked < CHECK_INTERVAL:
            return
        self._checked = now
        if self._file_stamp() != self._stamp:
            self.reload()

    def allows(self, token: str) -> bool:
        """Whether the token's hash is listed; every listed hash is compared, in constant time."""
        self._maybe_reload()
        digest = hashlib.sha256(token.encode()).digest()
        found = False
        for allowed in self._hashes:
            found |= hmac.compare_digest(digest, allowed)
        return found


def bearer_token(metadata: Any) -> str | None:
    """The token of the `authorization: Bearer <token>` header; None when there is none."""
    for key, value in metadata or ():
        if key == "authorization":
            found = _BEARER.fullmatch(value.strip()) if isinstance(value, str) else None
            return found.group(1) if found else ""
    return None


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls without a listed token before any work: UNAUTHENTICATED when none is
    sent, PERMISSION_DENIED when the one sent is not listed (ErrorInfo domain cptrules.dev)."""

    def __init__(self, tokens: TokenSet, reflection_requires_auth: bool = False) -> None:
        self.tokens = tokens
        self.exempt = (HEALTH_PREFIX,) + (() if reflection_requires_auth else REFLECTION_PREFIXES)

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(self.exempt):
            return handler
        token = bearer_token(details.invocation_metadata)
        if token is not None and token and self.tokens.allows(token):
            return handler
        refusal = (status.unauthenticated("TOKEN_MISSING", "this service needs an "
                                          "'authorization: Bearer <token>' header")
                   if not token else
                   status.permission_denied("TOKEN_INVALID", "the bearer token sent is not accepted"))

        def wrap(_: Callable[..., Any]) -> Callable[..., Any]:
            def refuse(request: Any, context: grpc.ServicerContext) -> Any:
                context.abort_with_status(refusal)

            return refuse

        return rewrap(handler, wrap)

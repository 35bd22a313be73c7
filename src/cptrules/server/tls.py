"""Transport security: TLS from a certificate and key, mutual TLS with a client CA (client
certificates then required), and plaintext only when asked for or on a loopback address, where
no one else can listen in.

The files are read again while the server runs: certificates are rotated in place (cert-manager
rewrites a mounted secret), and a restart for each rotation would drop every connection. grpc
asks for the configuration at each new connection's handshake; the files are re-read then, a
changed set that checks out is served from that connection on, and one that does not (unreadable,
not PEM, a key that is not the certificate's) is logged once while the set served before stays.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..errors import CptrulesError

log = logging.getLogger(__name__)


class ServerConfigError(CptrulesError):
    """Options that cannot make a safe server (e.g. plaintext on a public address)."""

    reason = "SERVER_CONFIG_INVALID"


@dataclass(frozen=True)
class Transport:
    """How the listener speaks: TLS files, or plaintext (`insecure`)."""

    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    insecure: bool = False

    @property
    def tls(self) -> bool:
        return self.cert is not None


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(transport: Transport, host: str) -> None:
    """Refuse options that would serve plaintext where others can reach it, or half a TLS set."""
    if (transport.cert is None) != (transport.key is None):
        raise ServerConfigError("--tls-cert and --tls-key go together: give both or neither")
    if transport.client_ca is not None and not transport.tls:
        raise ServerConfigError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
    if not transport.tls and not transport.insecure and not is_loopback(host):
        raise ServerConfigError(f"refusing to serve plaintext on {host}: give --tls-cert and "
                                "--tls-key, or --insecure to accept plaintext on purpose")


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ServerConfigError(f"{path}: cannot read the {what}: {error.strerror or error}") from None
    if b"-----BEGIN" not in data:
        raise ServerConfigError(f"{path}: the {what} is not PEM (no -----BEGIN line)")
    return data


def check_key_pair(transport: Transport) -> None:
    """A certificate and a key that do not belong together are one clear line at start, not a
    handshake failure deep in the transport."""
    import ssl

    if transport.cert is None or transport.key is None:
        return
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(transport.cert, transport.key)
    except ssl.SSLError as error:
        raise ServerConfigError(f"{transport.key} is not the private key of {transport.cert} "
                                f"({error.reason or error})") from None
    except OSError as error:
        raise ServerConfigError(f"cannot read the TLS certificate or key: {error.strerror or error}") from None


@dataclass(frozen=True)
class _Files:
    """The contents of the TLS files, as read together."""

    key: bytes
    cert: bytes
    client_ca: bytes | None

    def configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.key, self.cert)],
                                                         root_certificates=self.client_ca)


def _read_files(transport: Transport) -> _Files:
    """Every TLS file, each checked to be PEM."""
    assert transport.cert is not None and transport.key is not None
    return _Files(_read(transport.key, "TLS private key"), _read(transport.cert, "TLS certificate"),
                  _read(transport.client_ca, "client CA certificate") if transport.client_ca else None)


def _check_files(transport: Transport, files: _Files) -> None:
    """The key belongs to the certificate; the files are read again after the check, so a pair
    replaced while it was checked is not taken unchecked."""
    check_key_pair(transport)
    if _read_files(transport) != files:
        raise ServerConfigError(f"{transport.cert} or {transport.key} changed while being read")


class CertificateReloader:
    """The TLS files served, read again at every new connection's handshake (a few small reads);
    a changed set is checked, and taken only once it checks out."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._served = _read_files(transport)  # at start a problem stops the server
        _check_files(transport, self._served)
        self._refused: _Files | None = None    # the set last refused, not checked (or logged) again
        self._problem: str | None = None       # the last problem, so an unreadable file is logged once
        self._lock = threading.Lock()

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """The new configuration when the files changed and check out; None keeps the one served."""
        try:
            with self._lock:
                return self._fetch()
        except Exception:  # never fail a handshake for a problem of the reload itself
            log.exception("TLS certificate reload failed, keeping the certificate served")
            return None

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        files = None
        try:
            files = _read_files(self.transport)
            if files == self._served or files == self._refused:
                return None
            _check_files(self.transport, files)
        except ServerConfigError as error:
            if files is not None or error.message != self._problem:  # a new set, or a new read problem
                log.error("TLS certificate refused, keeping the one served", extra={"problem": error.message})
            self._refused, self._problem = files, error.message
            return None
        self._served, self._refused, self._problem = files, None, None
        log.info("TLS certificate reloaded",
                 extra={"cert": str(self.transport.cert), "key": str(self.transport.key),
                        "client_ca": str(self.transport.client_ca or "")})
        return files.configuration()

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._served.configuration(), self.fetch,
            require_client_authentication=self.transport.client_ca is not None)


def server_credentials(transport: Transport) -> grpc.ServerCredentials:
    """TLS credentials that follow the files on disk; with a client CA, every client must present
    a certificate it signed."""
    return CertificateReloader(transport).credentials()

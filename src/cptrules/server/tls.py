"""Transport security: TLS from a certificate and key, mutual TLS with a client CA (client
certificates then required), and plaintext only when asked for or on a loopback address, where
no one else can listen in."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..errors import CptrulesError


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


def server_credentials(transport: Transport) -> grpc.ServerCredentials:
    """TLS credentials; with a client CA, every client must present a certificate it signed."""
    assert transport.cert is not None and transport.key is not None
    pair = (_read(transport.key, "TLS private key"), _read(transport.cert, "TLS certificate"))
    check_key_pair(transport)
    ca = _read(transport.client_ca, "client CA certificate") if transport.client_ca else None
    return grpc.ssl_server_credentials([pair], root_certificates=ca,
                                       require_client_auth=ca is not None)

"""One way for every client command to reach a server: plaintext, TLS or mutual TLS, with an
optional bearer token read from a file, so `health` and `vectors verify` take the same options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..errors import CptrulesError


class ClientSetupError(CptrulesError):
    """A client option cannot be used: a file missing, or TLS options that do not go together."""

    reason = "CLIENT_SETUP"


@dataclass(frozen=True)
class Connection:
    """Where and how to connect; files are read when the channel is made."""

    target: str
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token_file: Path | None = None
    server_name: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace, target: str) -> Connection:
        return cls(target, args.tls_ca, args.tls_cert, args.tls_key, args.token_file,
                   args.tls_server_name or "")

    def _read(self, path: Path, what: str) -> bytes:
        try:
            return path.read_bytes()
        except OSError as exc:
            raise ClientSetupError(f"{what} {path}: {exc.strerror or exc}") from None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The bearer token as call metadata; the file's first non-empty line is the token."""
        if self.token_file is None:
            return ()
        lines = [line.strip() for line in self._read(self.token_file, "token file").decode().splitlines()]
        token = next((line for line in lines if line), "")
        if not token:
            raise ClientSetupError(f"token file {self.token_file} holds no token")
        return (("authorization", f"Bearer {token}"),)

    def channel(self) -> grpc.Channel:
        """A channel: TLS when any TLS option is given (the system roots without --tls-ca)."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ClientSetupError("--tls-cert and --tls-key go together (a client certificate and its key)")
        if not (self.tls_ca or self.tls_cert):
            return grpc.insecure_channel(self.target)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self._read(self.tls_ca, "CA file") if self.tls_ca else None,
            private_key=self._read(self.tls_key, "key file") if self.tls_key else None,
            certificate_chain=self._read(self.tls_cert, "certificate file") if self.tls_cert else None)
        options = [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
        return grpc.secure_channel(self.target, credentials, options=options)


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The TLS and token options every client command takes."""
    g = parser.add_argument_group("connection", "plaintext unless a TLS option is given")
    g.add_argument("--tls-ca", type=Path, help="CA certificate(s) to check the server with (PEM)")
    g.add_argument("--tls-cert", type=Path, help="client certificate for mutual TLS (PEM)")
    g.add_argument("--tls-key", type=Path, help="the client certificate's private key (PEM)")
    g.add_argument("--tls-server-name", help="the name to expect in the server's certificate, when "
                                             "it differs from the address's host")
    g.add_argument("--token-file", type=Path, help="file whose first line is a bearer token to send")

"""Certificates for the TLS tests, made here with the `cryptography` package: a CA, server
certificates for localhost and 127.0.0.1 (issued again at will, to rotate them under a running
server) and a client certificate for mutual TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass(frozen=True)
class Issued:
    """A certificate and its key as PEM, with the serial number a client can check."""

    cert: bytes
    key: bytes
    serial: int

    def write(self, cert: Path, key: Path) -> None:
        cert.write_bytes(self.cert)
        key.write_bytes(self.key)


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, common: str = "cptrules test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._sign(_name(common), self.key.public_key(), ca=True, names=None)
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def _sign(self, subject: x509.Name, public_key, ca: bool, names) -> x509.Certificate:
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if ca else self.cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, common: str = "localhost", server: bool = True) -> Issued:
        """A certificate for `common`; a server's also names localhost and 127.0.0.1."""
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if server else None
        cert = self._sign(_name(common), key.public_key(), ca=False, names=names)
        return Issued(cert.public_bytes(serialization.Encoding.PEM),
                      key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()),
                      cert.serial_number)


@pytest.fixture(scope="session")
def test_ca() -> CertificateAuthority:
    return CertificateAuthority()


@pytest.fixture(scope="session")
def make_ca() -> type[CertificateAuthority]:
    """For a test that needs a CA of its own (a second CA, a CA rotated)."""
    return CertificateAuthority

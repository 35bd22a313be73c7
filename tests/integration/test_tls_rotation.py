"""TLS files rotated in place under a running server (as cert-manager rewrites a mounted secret):
new connections get the new certificate without a restart, and a broken rotation keeps the
certificate served before, with one log event naming the problem."""

from __future__ import annotations

import logging
import socket
import ssl

import grpc
import pytest
from cryptography import x509

from cptrules.server.app import Features, build_server
from cptrules.server.tls import Transport
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration

HANG = 30  # seconds: only to tell "answers" from "never answers"
REFUSED = "TLS certificate refused, keeping the one served"


def served_certificate(port: int) -> x509.Certificate:
    """The certificate a new TLS connection to the server is shown."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=HANG) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def _answers(port: int, ca_pem: bytes, client=None) -> bool:
    """Whether a new channel trusting only `ca_pem` gets an answer (mutual TLS with `client`)."""
    creds = grpc.ssl_channel_credentials(ca_pem, client.key if client else None, client.cert if client else None)
    with grpc.secure_channel(f"localhost:{port}", creds, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        try:
            code_rules_service_pb2_grpc.CodeRulesServiceStub(channel).GetRuleset(svc.GetRulesetRequest(), timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False
    return True


@pytest.fixture
def tls_files(tmp_path):
    return tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"


def _serve(engine, transport: Transport):
    built = build_server(engine, "127.0.0.1:0", features=Features(transport))
    built.grpc_server.start()
    return built


def test_a_rotated_certificate_is_served_to_new_connections(engine, tls_files, test_ca, make_ca):
    """Rotated to a certificate from another CA: a new connection is shown its serial and a
    client trusting only the new CA is answered, one trusting only the old CA no longer."""
    cert, key, _ = tls_files
    first = test_ca.issue("localhost")
    first.write(cert, key)
    built = _serve(engine, Transport(cert, key))
    try:
        assert served_certificate(built.port).serial_number == first.serial
        assert _answers(built.port, test_ca.pem)
        other_ca = make_ca("rotated CA")
        second = other_ca.issue("localhost")
        second.write(cert, key)
        assert served_certificate(built.port).serial_number == second.serial
        assert _answers(built.port, other_ca.pem)
        assert not _answers(built.port, test_ca.pem)
    finally:
        built.grpc_server.stop(None)


def test_a_broken_rotation_keeps_the_pair_served_and_is_logged_once(engine, tls_files, test_ca, caplog):
    """A key that is not the certificate's (two such rotations), then a key file gone: the old
    pair keeps serving, each broken rotation is one event naming its problem, however many
    connections see it; a good pair afterwards is taken."""
    cert, key, _ = tls_files
    first = test_ca.issue("localhost")
    first.write(cert, key)
    built = _serve(engine, Transport(cert, key))
    caplog.set_level(logging.INFO, logger="cptrules.server.tls")
    try:
        for _ in range(2):  # twice a new certificate with the old key: each refused once
            cert.write_bytes(test_ca.issue("localhost").cert)
            for _ in range(3):
                assert served_certificate(built.port).serial_number == first.serial
        assert _answers(built.port, test_ca.pem)
        key.unlink()
        for _ in range(2):
            assert served_certificate(built.port).serial_number == first.serial
        refused = [r for r in caplog.records if r.getMessage() == REFUSED]
        assert [r.levelno for r in refused] == [logging.ERROR] * 3
        for mismatch in refused[:2]:
            assert "is not the private key of" in mismatch.problem and str(cert) in mismatch.problem
        assert "cannot read the TLS private key" in refused[2].problem and str(key) in refused[2].problem

        third = test_ca.issue("localhost")
        third.write(cert, key)
        assert served_certificate(built.port).serial_number == third.serial
        assert [r.getMessage() for r in caplog.records].count("TLS certificate reloaded") == 1
    finally:
        built.grpc_server.stop(None)


def test_a_rotated_client_ca_decides_which_client_certificates_are_accepted(engine, tls_files, test_ca, make_ca):
    cert, key, client_ca = tls_files
    test_ca.issue("localhost").write(cert, key)
    old_ca, new_ca = make_ca("old client CA"), make_ca("new client CA")
    old_client, new_client = old_ca.issue("billing", server=False), new_ca.issue("billing", server=False)
    client_ca.write_bytes(old_ca.pem)
    built = _serve(engine, Transport(cert, key, client_ca))
    try:
        assert _answers(built.port, test_ca.pem, old_client)
        assert not _answers(built.port, test_ca.pem, new_client)
        client_ca.write_bytes(new_ca.pem)
        assert _answers(built.port, test_ca.pem, new_client)
        assert not _answers(built.port, test_ca.pem, old_client)
    finally:
        built.grpc_server.stop(None)

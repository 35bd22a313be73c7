"""TLS, mutual TLS and bearer tokens, against the real server on loopback, with certificates
made by the tests."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cptrules.server import auth
from cptrules.server.app import Features, build_server
from cptrules.server.auth import TokenFileError, TokenSet, read_token_file, token_hash
from cptrules.server.testing import error_info
from cptrules.server.tls import ServerConfigError, Transport, check_transport
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration

HANG = 30  # seconds: only to tell "answers" from "never answers"
TOKEN = "integration-suite-token-1"


# -- certificates --------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool, server: bool = False):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """A CA, a server certificate for localhost and a client certificate, all from one CA;
    and a second CA whose client certificate the server must refuse."""

    def __init__(self, folder: Path) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = _cert("cptrules test CA", self.ca_key, _name("cptrules test CA"), self.ca_key, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        client_key = ec.generate_private_key(ec.SECP256R1())
        other_key = ec.generate_private_key(ec.SECP256R1())
        other_ca = _cert("other CA", other_key, _name("other CA"), other_key, ca=True)
        self.files: dict[str, Path] = {}
        for name, data in {
            "ca.pem": _pem(self.ca),
            "server.pem": _pem(_cert("localhost", server_key, self.ca.subject, self.ca_key, False, True)),
            "server.key": _key_pem(server_key),
            "client.pem": _pem(_cert("billing-system", client_key, self.ca.subject, self.ca_key, False)),
            "client.key": _key_pem(client_key),
            "stranger.pem": _pem(_cert("stranger", client_key, other_ca.subject, other_key, False)),
        }.items():
            (folder / name).write_bytes(data)
            self.files[name] = folder / name

    def read(self, name: str) -> bytes:
        return self.files[name].read_bytes()

    def channel(self, port: int, client: str | None = None) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.read("ca.pem"),
            private_key=self.read("client.key") if client else None,
            certificate_chain=self.read(client) if client else None)
        return grpc.secure_channel(f"localhost:{port}", creds)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def _started(engine, features: Features):
    built = build_server(engine, "127.0.0.1:0", features=features)
    built.grpc_server.start()
    return built


def _ruleset(channel: grpc.Channel, metadata=None) -> svc.GetRulesetRequest:
    stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
    return stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG, metadata=metadata)


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(engine, pki):
    built = _started(engine, Features(Transport(pki.files["server.pem"], pki.files["server.key"])))
    yield built.port
    built.grpc_server.stop(None)


def test_tls_server_answers_over_tls(tls_server, pki):
    with pki.channel(tls_server) as channel:
        assert _ruleset(channel).revision.startswith("sha256:")


def test_tls_server_refuses_plaintext(tls_server):
    with grpc.insecure_channel(f"127.0.0.1:{tls_server}") as channel:
        with pytest.raises(grpc.RpcError) as refused:
            code_rules_service_pb2_grpc.CodeRulesServiceStub(channel).GetRuleset(
                svc.GetRulesetRequest(), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_the_ca(engine, pki):
    built = _started(engine, Features(Transport(pki.files["server.pem"], pki.files["server.key"],
                                                pki.files["ca.pem"])))
    try:
        with pki.channel(built.port, "client.pem") as channel:
            assert _ruleset(channel).code_count > 0
        for client in (None, "stranger.pem"):
            with pki.channel(built.port, client) as channel, pytest.raises(grpc.RpcError) as refused:
                code_rules_service_pb2_grpc.CodeRulesServiceStub(channel).GetRuleset(
                    svc.GetRulesetRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, client
    finally:
        built.grpc_server.stop(None)


def test_plaintext_is_refused_off_loopback_unless_asked_for(pki):
    with pytest.raises(ServerConfigError, match="plaintext on 0.0.0.0"):
        check_transport(Transport(), "0.0.0.0")
    check_transport(Transport(insecure=True), "0.0.0.0")
    for loopback in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        check_transport(Transport(), loopback)
    check_transport(Transport(pki.files["server.pem"], pki.files["server.key"]), "0.0.0.0")
    with pytest.raises(ServerConfigError, match="go together"):
        check_transport(Transport(pki.files["server.pem"]), "127.0.0.1")
    with pytest.raises(ServerConfigError, match="needs --tls-cert"):
        check_transport(Transport(client_ca=pki.files["ca.pem"]), "127.0.0.1")


def test_a_key_that_is_not_pem_is_one_line(engine, tmp_path, pki):
    junk = tmp_path / "server.key"
    junk.write_text("not a key")
    with pytest.raises(ServerConfigError, match="server.key: the TLS private key is not PEM"):
        build_server(engine, "127.0.0.1:0", features=Features(Transport(pki.files["server.pem"], junk)))


def test_a_key_that_is_not_the_certificates_is_one_line(engine, pki):
    """The client's key with the server's certificate: named at start, not a handshake failure."""
    transport = Transport(pki.files["server.pem"], pki.files["client.key"])
    with pytest.raises(ServerConfigError, match="client.key is not the private key of .*server.pem"):
        build_server(engine, "127.0.0.1:0", features=Features(transport))


@pytest.mark.parametrize("flag", ["--port", "--metrics-port"])
def test_a_port_out_of_range_is_a_usage_error(capsys, flag):
    from cptrules import cli

    with pytest.raises(SystemExit) as stopped:
        cli.main(["serve", flag, "99999"])
    assert stopped.value.code == 2 and "99999 is not a port (0-65535)" in capsys.readouterr().err


# -- tokens ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens"
    path.write_text(f"# integration suite\n{token_hash(TOKEN)}  # added for the tests\n\n"
                    f"{token_hash('another-client')}\n")
    return path


@pytest.fixture(scope="module")
def token_server(engine, token_file):
    built = _started(engine, Features(tokens=TokenSet(token_file)))
    channel = grpc.insecure_channel(f"127.0.0.1:{built.port}")
    yield channel
    channel.close()
    built.grpc_server.stop(None)


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def test_the_right_token_is_answered(token_server):
    assert _ruleset(token_server, _bearer(TOKEN)).code_count > 0
    assert _ruleset(token_server, _bearer("another-client")).code_count > 0


@pytest.mark.parametrize("metadata, code, reason", [
    (None, grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
    ([("authorization", "Basic dXNlcjpwdw==")], grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
    (_bearer("wrong-token"), grpc.StatusCode.PERMISSION_DENIED, "TOKEN_INVALID"),
    (_bearer(token_hash(TOKEN)), grpc.StatusCode.PERMISSION_DENIED, "TOKEN_INVALID"),  # the hash is no token
])
def test_no_or_wrong_token_is_refused_with_error_info(token_server, metadata, code, reason):
    stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(token_server)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=HANG, metadata=metadata)
    assert refused.value.code() == code
    info = error_info(refused.value)
    assert (info.reason, info.domain) == (reason, "cptrules.dev")
    assert "wrong-token" not in refused.value.details()


def test_health_needs_no_token_and_reflection_is_configurable(engine, token_server, token_file):
    check = health_pb2_grpc.HealthStub(token_server).Check(health_pb2.HealthCheckRequest(), timeout=HANG)
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    listed = next(reflection_pb2_grpc.ServerReflectionStub(token_server).ServerReflectionInfo(
        iter([request]), timeout=HANG))
    assert listed.list_services_response.service

    built = _started(engine, Features(tokens=TokenSet(token_file), reflection_requires_auth=True))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                next(stub.ServerReflectionInfo(iter([request]), timeout=HANG))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            allowed = next(stub.ServerReflectionInfo(iter([request]), timeout=HANG, metadata=_bearer(TOKEN)))
            assert allowed.list_services_response.service
            assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=HANG).status == 1
    finally:
        built.grpc_server.stop(None)


def test_token_file_changes_are_picked_up_and_a_broken_file_keeps_the_old_tokens(engine, tmp_path,
                                                                                monkeypatch):
    path = tmp_path / "tokens"
    path.write_text(token_hash("first") + "\n")
    now = [0.0]
    tokens = TokenSet(path, clock=lambda: now[0])
    built = _started(engine, Features(tokens=tokens))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            assert _ruleset(channel, _bearer("first")).code_count
            path.write_text(token_hash("second") + "\n")
            os.utime(path, ns=(time.time_ns() + 10**9,) * 2)
            now[0] += auth.CHECK_INTERVAL + 1
            assert _ruleset(channel, _bearer("second")).code_count
            with pytest.raises(grpc.RpcError) as refused:
                _ruleset(channel, _bearer("first"))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

            path.write_text("second\n")  # a token in clear: refused, the old hashes stay
            os.utime(path, ns=(time.time_ns() + 2 * 10**9,) * 2)
            now[0] += auth.CHECK_INTERVAL + 1
            assert _ruleset(channel, _bearer("second")).code_count
            assert not tokens.reload()
    finally:
        built.grpc_server.stop(None)


@pytest.mark.parametrize("text, problem", [
    ("", "lists no token hash"),
    ("# only a comment\n", "lists no token hash"),
    ("s3cret\n", ":1: expected sha256:"),
    (f"{token_hash('a')}\nsha256:{'0' * 63}\n", ":2: expected sha256:"),
    (f"sha1:{hashlib.sha1(b'a').hexdigest()}\n", ":1: expected sha256:"),
])
def test_bad_token_files_are_refused_with_their_line(tmp_path, text, problem):
    path = tmp_path / "tokens"
    path.write_text(text)
    with pytest.raises(TokenFileError, match=problem):
        read_token_file(path)


def test_token_hashes_are_compared_with_every_listed_hash(monkeypatch, tmp_path):
    """Every listed hash is compared, found or not, in constant time (hmac.compare_digest)."""
    path = tmp_path / "tokens"
    path.write_text("".join(token_hash(t) + "\n" for t in ("a", "b", "c")))
    tokens = TokenSet(path)
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda x, y: calls.append(1) or real(x, y))
    assert tokens.allows("a")
    assert len(calls) == 3
    assert not tokens.allows("d")
    assert len(calls) == 6

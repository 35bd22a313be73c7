"""What client teams use, against real servers on loopback: a pinned today (`--today`,
CPTRULES_TODAY, GetRuleset.today), `cptrules health` (plaintext, TLS, mutual TLS, a token-checking
server) and conformance vectors (`cptrules vectors export/verify`)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ipaddress
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cptrules import cli
from cptrules.engine import Engine
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc


pytestmark = pytest.mark.integration

HANG = 30  # seconds: only to tell "answers" from "never answers"


def _day(message) -> dt.date:
    return dt.date(message.year, message.month, message.day)


# -- today ------------------------------------------------------------------------------------


def test_get_ruleset_reports_the_pinned_today(stub, cptrules_config):
    assert _day(stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).today) == cptrules_config.today


def test_two_servers_pinned_to_different_days_answer_undated_requests_for_their_day(
        engine, cptrules_server_factory):
    """One snapshot, two clocks: an undated question is answered for each server's today."""
    days = [dt.date(2025, 12, 31), dt.date(2026, 2, 2)]
    for day in days:
        server = cptrules_server_factory(engine=Engine(engine.snapshot, clock=lambda day=day: day))
        with server.channel() as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="is 0556T permanent"),
                                         timeout=HANG)
            assert _day(answer.date_of_service) == day
            assert _day(answer.provenance.date_of_service) == day
            assert _day(stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).today) == day


@pytest.fixture
def loads_share_the_session_snapshot(engine, monkeypatch):
    """Commands that load an engine get the session's snapshot (a load costs seconds) with the
    clock the command chose."""
    def load(cls, rules_dir=None, data_dirs=None, check_data=True, clock=None, budget=None):
        return Engine(engine.snapshot, clock=clock)

    monkeypatch.setattr(Engine, "load", classmethod(load))


def test_ask_today_flag_beats_the_environment_which_beats_the_clock(
        monkeypatch, capsys, loads_share_the_session_snapshot):
    monkeypatch.setenv("CPTRULES_TODAY", "2024-06-30")
    assert cli.main(["ask", "is 0556T permanent", "--explain", "--today", "2027-03-01"]) == 0
    assert "date of service: 2027-03-01" in capsys.readouterr().out
    assert cli.main(["ask", "is 0556T permanent", "--explain"]) == 0
    assert "date of service: 2024-06-30" in capsys.readouterr().out


def test_a_bad_today_in_the_environment_is_a_usage_error_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("CPTRULES_TODAY", "2026-02-30")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ask", "is 0556T permanent"])
    assert exit_.value.code == 2
    assert "CPTRULES_TODAY='2026-02-30': '2026-02-30' is not a date" in capsys.readouterr().err


def test_a_bad_today_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ask", "x", "--today", "tomorrow"])
    assert exit_.value.code == 2 and "is not a date" in capsys.readouterr().err


# -- health -----------------------------------------------------------------------------------

# A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate.
@dataclass(frozen=True)
class Pem:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def issue_certificates(folder: Path) -> Pem:
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("cptrules test CA")).issuer_name(_name("cptrules test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def leaf(common: str, usage, names=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(ca.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    server, server_key = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH,
                              [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client, client_key = leaf("cptrules test client", ExtendedKeyUsageOID.CLIENT_AUTH)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "client.pem").write_bytes(client.public_bytes(pem))
    return Pem(folder / "ca.pem", folder / "server.pem", _write_key(server_key, folder / "server.key"),
               folder / "client.pem", _write_key(client_key, folder / "client.key"))



def test_health_of_the_session_server_is_one_serving_line(server_port, capsys):
    assert cli.main(["health", f"127.0.0.1:{server_port}"]) == 0
    assert capsys.readouterr().out == f"127.0.0.1:{server_port}: SERVING\n"
    assert cli.main(["health", f"127.0.0.1:{server_port}", "--service", "cptrules.v1.CodeRulesService"]) == 0
    capsys.readouterr()
    assert cli.main(["health", f"127.0.0.1:{server_port}", "--service", "no.such.Service"]) == 1
    assert capsys.readouterr().out.startswith(f"127.0.0.1:{server_port}: NOT_FOUND")


class _TokenGate(grpc.ServerInterceptor):
    """Refuses every call without `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self.token = token

    def intercept_service(self, continuation, details):
        if (("authorization", f"Bearer {self.token}") in tuple(details.invocation_metadata)):
            return continuation(details)
        return grpc.unary_unary_rpc_method_handler(
            lambda request, context: context.abort(grpc.StatusCode.UNAUTHENTICATED, "no token"))


def _health_server(status, credentials=None, interceptors=()):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=list(interceptors))
    servicer = health.HealthServicer()
    servicer.set("", status)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = (server.add_secure_port("127.0.0.1:0", credentials) if credentials
            else server.add_insecure_port("127.0.0.1:0"))
    server.start()
    return server, port


def test_health_not_serving_and_unreachable_exit_1(capsys):
    server, port = _health_server(health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        assert cli.main(["health", f"127.0.0.1:{port}"]) == 1
        assert capsys.readouterr().out == f"127.0.0.1:{port}: NOT_SERVING\n"
    finally:
        server.stop(None)
    assert cli.main(["health", f"127.0.0.1:{port}", "--timeout", "2"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"127.0.0.1:{port}: UNAVAILABLE") and out.count("\n") == 1


def test_health_sends_the_token_from_the_file(tmp_path, capsys):
    server, port = _health_server(health_pb2.HealthCheckResponse.SERVING, interceptors=[_TokenGate("s3cret")])
    token = tmp_path / "token"
    token.write_text("\ns3cret\n")
    try:
        assert cli.main(["health", f"127.0.0.1:{port}"]) == 1
        assert "UNAUTHENTICATED" in capsys.readouterr().out
        assert cli.main(["health", f"127.0.0.1:{port}", "--token-file", str(token)]) == 0
        assert capsys.readouterr().out.endswith("SERVING\n")
    finally:
        server.stop(None)


def test_health_over_tls_and_mutual_tls(tmp_path, capsys):
    pem = issue_certificates(tmp_path)
    tls = grpc.ssl_server_credentials([(pem.server_key.read_bytes(), pem.server_cert.read_bytes())])
    mutual = grpc.ssl_server_credentials([(pem.server_key.read_bytes(), pem.server_cert.read_bytes())],
                                         root_certificates=pem.ca_cert.read_bytes(),
                                         require_client_auth=True)
    served = [_health_server(health_pb2.HealthCheckResponse.SERVING, credentials=c) for c in (tls, mutual)]
    (_, tls_port), (_, mtls_port) = served
    ca = ["--tls-ca", str(pem.ca_cert), "--tls-server-name", "localhost"]
    client = ["--tls-cert", str(pem.client_cert), "--tls-key", str(pem.client_key)]
    try:
        assert cli.main(["health", f"127.0.0.1:{tls_port}", "--timeout", "5", *ca]) == 0
        assert cli.main(["health", f"127.0.0.1:{tls_port}", "--timeout", "5"]) == 1  # plaintext to TLS
        assert cli.main(["health", f"127.0.0.1:{mtls_port}", "--timeout", "5", *ca]) == 1  # no client cert
        assert cli.main(["health", f"127.0.0.1:{mtls_port}", "--timeout", "5", *ca, *client]) == 0
        assert cli.main(["health", f"127.0.0.1:{mtls_port}", *ca, "--tls-cert", str(pem.client_cert)]) == 1
        out = capsys.readouterr()
        assert out.out.splitlines()[0] == f"127.0.0.1:{tls_port}: SERVING"
        assert "--tls-cert and --tls-key go together" in out.err
    finally:
        for server, _ in served:
            server.stop(None)


# -- conformance vectors ------------------------------------------------------------------------

CODES = ["0556T", "99213", "G0439", "99999", "055T"]  # known, known, HCPCS, unknown, malformed
QUESTIONS = ["is 0556T permanent", "what is 99213", "when does 0556T sunset", "hello"]


def test_export_then_verify_against_the_same_server_finds_no_difference(server_port, tmp_path, capsys):
    vectors = tmp_path / "vectors.jsonl"
    target = f"127.0.0.1:{server_port}"
    assert cli.main(["vectors", "export", str(vectors), "--target", target, "--codes", *CODES,
                     "--questions", *QUESTIONS]) == 0
    records = [json.loads(line) for line in vectors.read_text().splitlines()]
    assert [r["method"] for r in records] == ["GetCode", "GetFaq"] * len(CODES) + ["AnswerQuestion"] * 4
    assert {r.get("status") for r in records} == {None, "NOT_FOUND", "INVALID_ARGUMENT"}
    assert all(r["revision"] and r["releases"] and r["today"] == "2026-11-27" for r in records)
    assert records[0]["response"]["code"] == "0556T"
    capsys.readouterr()
    assert cli.main(["vectors", "verify", str(vectors), "--target", target]) == 0
    assert capsys.readouterr().out == f"{len(records)} vectors, 0 differ\n"


def test_verify_reports_a_server_with_another_today_and_an_edited_expectation(
        engine, server_port, cptrules_server_factory, tmp_path, capsys):
    vectors = tmp_path / "vectors.jsonl"
    target = f"127.0.0.1:{server_port}"
    assert cli.main(["vectors", "export", str(vectors), "--target", target, "--codes", "0556T",
                     "--questions", "is 0556T permanent"]) == 0
    other = cptrules_server_factory(engine=Engine(engine.snapshot, clock=lambda: dt.date(2027, 1, 4)))
    capsys.readouterr()
    assert cli.main(["vectors", "verify", str(vectors), "--target", other.address]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "note: vectors recorded with today 2026-11-27, server's today is 2027-01-04" in out[0]
    assert any(line.startswith("line 3: AnswerQuestion") for line in out)
    assert '  response.date_of_service.year: 2026 → 2027' in out
    assert out[-1] == "3 vectors, 3 differ"

    records = [json.loads(line) for line in vectors.read_text().splitlines()]
    records[0]["response"]["code"] = "0557T"  # an expectation the server does not meet
    vectors.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli.main(["vectors", "verify", str(vectors), "--target", target]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ['line 1: GetCode {"code": "0556T"}: 1 difference(s)',
                   '  response.code: "0557T" → "0556T"', "3 vectors, 1 differ"]


def test_export_in_process_with_a_date_and_a_pinned_today(loads_share_the_session_snapshot, server_port,
                                                         tmp_path, capsys):
    """No --target: the export serves its own engine on loopback; its vectors verify against
    the session server (same snapshot), and the pinned today is what they record."""
    vectors = tmp_path / "v.jsonl"
    assert cli.main(["vectors", "export", str(vectors), "--codes", "99213", "--date", "2025-10-01",
                     "--today", "2026-11-27"]) == 0
    records = [json.loads(line) for line in vectors.read_text().splitlines()]
    assert records[0]["request"] == {"code": "99213", "date_of_service": {"year": 2025, "month": 10, "day": 1}}
    assert all(r["today"] == "2026-11-27" for r in records)
    assert cli.main(["vectors", "verify", str(vectors), "--target", f"127.0.0.1:{server_port}"]) == 0


def test_a_damaged_vector_file_names_its_line(server_port, tmp_path, capsys):
    vectors = tmp_path / "v.jsonl"
    vectors.write_text('{"method": "GetCode", "request": {"code": "0556T"}, "response": {}}\n'
                       '{"method": "NoSuchMethod", "request": {}}\n')
    assert cli.main(["vectors", "verify", str(vectors), "--target", f"127.0.0.1:{server_port}"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {vectors}:2: not a conformance vector (KeyError")


def test_verify_against_no_server_is_one_line(tmp_path, capsys):
    vectors = tmp_path / "v.jsonl"
    vectors.write_text('{"method": "GetCode", "request": {"code": "0556T"}, "response": {}}\n')
    with socket.socket() as holder:  # a port nothing listens on
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    assert cli.main(["vectors", "verify", str(vectors), "--target", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: 127.0.0.1:{port}: GetRuleset: UNAVAILABLE") and err.count("\n") == 1

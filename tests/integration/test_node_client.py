"""A Node.js client (@grpc/grpc-js with @grpc/proto-loader) reads ExportFaqs over a real server,
compiling the protos `cptrules protos` writes: proof that a non-Python client can use the stream
and that google/type/date.proto is found; and calls `cptrules serve` over TLS with a bearer token,
as an integrator's client would, which `cptrules health` probes too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cptrules import cli
from cptrules.protos import write_protos
from cptrules.server.auth import token_hash
from cptrules.v1 import code_rules_service_pb2 as pb

pytestmark = pytest.mark.integration
NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (bash .ci/run installs it)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("tests/node has no node_modules: run `npm ci --prefix tests/node` (bash .ci/run does)")
    return node


def test_node_client_reads_the_category_iii_export(node, server_port, engine, stub, tmp_path):
    write_protos(tmp_path)
    done = subprocess.run([node, str(NODE_DIR / "export_faqs.js"), f"127.0.0.1:{server_port}", str(tmp_path),
                           "CODE_CATEGORY_CATEGORY_III", "0556T"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    expected = list(engine.snapshot.codes_in("CATEGORY_III"))
    assert summary["count"] == summary["total"] == len(expected)
    assert summary["codes"] == expected
    faq = stub.GetFaq(pb.GetFaqRequest(code="0556T"))
    watched = summary["watched"]
    assert [(e["intent"], e["question"], e["text"]) for e in watched["entries"]] == [
        (e.intent, e.question, e.text) for e in faq.entries]
    today = engine.clock()
    assert watched["date_of_service"] == {"year": today.year, "month": today.month, "day": today.day}


# -- over TLS with a token, against `cptrules serve` ----------------------------------------------

TOKEN = "node-client-token"


@pytest.fixture(scope="module")
def tls_serve(tmp_path_factory, test_ca, engine):
    """`cptrules serve --tls-cert --tls-key --auth-token-file` as a process on a free port (after
    the session engine, whose checked snapshot makes its start warm)."""
    folder = tmp_path_factory.mktemp("tls-serve")
    test_ca.issue("localhost").write(folder / "server.pem", folder / "server.key")
    (folder / "ca.pem").write_bytes(test_ca.pem)
    (folder / "tokens").write_text(token_hash(TOKEN) + "\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "cptrules", "serve", "--port", "0", "--log-format", "json",
         "--tls-cert", str(folder / "server.pem"), "--tls-key", str(folder / "server.key"),
         "--auth-token-file", str(folder / "tokens")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        line = process.stdout.readline()
        found = re.search(r"serving on [\d.]+:(\d+) ", line)
        assert found, f"no address on the first line: {line!r}"
        yield int(found.group(1)), folder
    finally:
        process.terminate()
        process.wait(timeout=60)
        process.stdout.close()


def _node_call(node, port: int, protos: Path, ca: str, *token: str) -> dict:
    done = subprocess.run([node, str(NODE_DIR / "tls_call.js"), f"localhost:{port}", str(protos), ca, *token],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_client_calls_over_tls_with_a_bearer_token(node, tls_serve, tmp_path, engine):
    """The right token is answered over TLS (a unary call and a stream); no token is
    UNAUTHENTICATED, a wrong one PERMISSION_DENIED; plaintext to the TLS port gets no answer."""
    port, folder = tls_serve
    write_protos(tmp_path)
    ca = str(folder / "ca.pem")
    answered = _node_call(node, port, tmp_path, ca, TOKEN)
    assert answered == {"ok": True, "revision": engine.snapshot.ruleset.revision, "exported": ["0556T"]}
    assert _node_call(node, port, tmp_path, ca)["code"] == "UNAUTHENTICATED"
    assert _node_call(node, port, tmp_path, ca, "not-the-token")["code"] == "PERMISSION_DENIED"
    assert _node_call(node, port, tmp_path, "-", TOKEN)["code"] == "UNAVAILABLE"


def test_health_probes_the_tls_and_token_server(tls_serve, capsys):
    """Health checking needs no token; it needs the server's CA, and plaintext is refused."""
    port, folder = tls_serve
    target = f"127.0.0.1:{port}"
    ca = ["--tls-ca", str(folder / "ca.pem"), "--timeout", "10"]
    assert cli.main(["health", target, *ca]) == 0
    assert cli.main(["health", target, *ca, "--service", "cptrules.v1.CodeRulesService"]) == 0
    assert cli.main(["health", target, "--timeout", "5"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [f"{target}: SERVING"] * 2
    assert lines[2].startswith(f"{target}: UNAVAILABLE")

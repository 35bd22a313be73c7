"""A Node.js client (@grpc/grpc-js with @grpc/proto-loader) reads ExportFaqs over a real server,
compiling the protos `cptrules protos` writes: proof that a non-Python client can use the stream
and that google/type/date.proto is found."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cptrules.protos import write_protos
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

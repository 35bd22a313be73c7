"""`cptrules serve` as a process, configured from the environment: drain on SIGTERM under load,
JSON log events, metrics on their own address, a port in use, reloading on file changes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration

HANG = 60  # seconds: only to tell "stops" from "never stops"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(env: dict[str, str], stderr) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen([sys.executable, "-m", "cptrules", "serve"], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = process.stdout.readline()
    found = re.search(r"serving on [\d.]+:(\d+) ", line)
    if not found:
        process.kill()
        process.wait()
        raise AssertionError(f"no address on the first line: {line!r}")
    return process, int(found.group(1))


def test_sigterm_under_load_drains_with_zero_failed_calls(tmp_path):
    """Configured only by CPTRULES_* variables. Clients run ListCodes pages and GetCode calls;
    SIGTERM: health turns NOT_SERVING (the watch stream sees it) while the listener is still
    open, the clients stop sending, every call already sent succeeds, and the process exits 0
    within the grace period; each step is a JSON log event, each call a line with its request id."""
    metrics_port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {"CPTRULES_PORT": "0", "CPTRULES_LOG_FORMAT": "json", "CPTRULES_GRACE": "10", "CPTRULES_SHUTDOWN_DELAY": "1",
           "CPTRULES_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
           "CPTRULES_DECISION_LOG": str(tmp_path / "decisions.jsonl")}
    with open(log_path, "w") as stderr:
        process, port = _start(env, stderr)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
                watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
                not_serving = threading.Event()
                ok, failed, lock = [0], [], threading.Lock()

                def client(n: int) -> None:
                    while not not_serving.is_set():
                        try:
                            if n % 2:
                                stub.ListCodes(svc.ListCodesRequest(page_size=300), timeout=HANG,
                                               metadata=[("x-request-id", f"load-{n}")])
                            else:
                                stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=HANG,
                                             metadata=[("x-request-id", f"load-{n}")])
                            with lock:
                                ok[0] += 1
                        except grpc.RpcError as error:
                            with lock:
                                failed.append(error.code())

                threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
                for thread in threads:
                    thread.start()
                time.sleep(1.5)
                scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                                 timeout=HANG).read().decode()
                before = ok[0]
                process.send_signal(signal.SIGTERM)
                assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
                not_serving.set()
                for thread in threads:
                    thread.join(HANG)
                assert process.wait(timeout=HANG) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
    assert failed == [], f"{len(failed)} calls failed: {set(failed)}"
    assert before > 0 and ok[0] >= before
    assert 'cptrules_build_info{' in scraped and "cptrules_rpc_requests_total" in scraped
    assert "process_resident_memory_bytes" in scraped

    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    for step in ("serving", "stopping: health NOT_SERVING", "stopped"):
        assert step in names, (step, names)
    assert names.index("serving") < names.index("stopping: health NOT_SERVING") < names.index("stopped")
    # The drain is bounded by the grace period, as the server's own log times it (the clients'
    # threads winding down on a loaded machine are not the server's drain).
    at = {e["event"]: dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in events}
    drained = (at["stopped"] - at["stopping: health NOT_SERVING"]).total_seconds()
    assert drained < 10 + 1 + 5, drained  # grace period + shutdown delay + the stop's own margin
    rpcs = [e for e in events if e["event"] == "rpc"]
    assert {e["request_id"] for e in rpcs if e["method"].endswith("/GetCode")} <= {
        f"load-{n}" for n in range(0, 6, 2)}
    assert all(e["code"] == "OK" for e in rpcs if "CodeRulesService" in e["method"])
    decisions = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert len(decisions) == sum(1 for e in rpcs if "CodeRulesService" in e["method"])


def test_a_port_in_use_is_one_line_before_anything_loads(tmp_path):
    """The rules folder does not even exist: the error is about the port, so nothing was loaded."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "cptrules", "serve", "--port", str(port),
                               "--rules", str(tmp_path / "no-such-rules")],
                              capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"], done.stderr
    assert done.stdout == ""


def test_plaintext_on_a_public_address_is_refused_before_loading(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cptrules", "serve", "--host", "0.0.0.0", "--port", "0",
                           "--rules", str(tmp_path / "no-such-rules")],
                          capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: refusing to serve plaintext on 0.0.0.0: give --tls-cert and --tls-key, or --insecure "
        "to accept plaintext on purpose"]


@pytest.mark.slow
def test_watch_reloads_a_changed_rules_folder_and_keeps_serving_a_broken_one(rules_copy: Path, tmp_path):
    """--watch: an edited template is served after the reload; a broken edit is refused (logged with
    its problems) and the last good revision keeps serving."""
    from cptrules.ruleset import load_ruleset

    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as stderr:
        process, port = _start({"CPTRULES_PORT": "0", "CPTRULES_RULES": str(rules_copy),
                                "CPTRULES_WATCH": "1", "CPTRULES_LOG_FORMAT": "json"}, stderr)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
                template = rules_copy / "answers" / "what_is.j2"
                template.write_text(template.read_text() + "\nThis text comes from a watched edit.\n")
                wanted = load_ruleset(rules_copy).revision
                deadline = time.monotonic() + 300
                while stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).revision != wanted:
                    assert time.monotonic() < deadline, "the edit was never served"
                    time.sleep(0.5)
                answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="what is 0556T"), timeout=HANG)
                assert "watched edit" in answer.text

                template.write_text("{{ no_such_fact_anywhere }}\n")
                deadline = time.monotonic() + 300
                while "reload refused" not in log_path.read_text():
                    assert time.monotonic() < deadline, "the broken edit was never refused"
                    time.sleep(0.5)
                assert stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).revision == wanted
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=HANG) == 0
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
    refused = [json.loads(line) for line in log_path.read_text().splitlines()
               if line.startswith("{") and "reload refused" in line]
    assert refused[0]["result"] == "failure" and refused[0]["problems"]

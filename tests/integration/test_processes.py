"""`cptrules serve --processes N`: workers share one port and all answer; SIGTERM stops them all;
a worker that dies stops the rest with a failure status; a taken port is refused at once."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from cptrules.v1 import code_rules_service_pb2 as svc
from cptrules.v1 import code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration

HANG = 120  # seconds: only to tell "answers" from "never answers", not a speed limit
CONNECTIONS = 32  # the kernel spreads connections by their addresses: all on one worker is ~1 in 2^31


@contextlib.contextmanager
def serving(log: Path, *extra: str):
    """`cptrules serve --port 0 --processes 2` in a child process: it, its port and its workers."""
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "cptrules", "serve", "--port", "0", "--processes", "2",
                                    "--grace", "2", *extra], stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            line = process.stdout.readline()
            found = re.search(r"serving on [\d.]+:(\d+) .*2 processes: (\d+), (\d+)\)", line)
            assert found, f"no address and workers on the first line: {line!r}; {log.read_text()}"
            yield process, int(found.group(1)), {int(found.group(2)), int(found.group(3))}
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                found.add(target[8:-1])
    return found


def _accepted(port: int) -> set[str]:
    """Inodes of established TCP connections whose local port is `port` (the server's ends)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    return inodes


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_two_workers_answer_on_one_port_and_sigterm_stops_them_all(tmp_path):
    with serving(tmp_path / "serve.log") as (process, port, workers):
        channels = [grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(CONNECTIONS)]
        try:
            for channel in channels:  # a fresh connection each: the kernel picks a worker for each
                stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
                assert stub.GetCode(svc.GetCodeRequest(code="0556T"), timeout=HANG).code == "0556T"
            accepted = _accepted(port)
            per_worker = {pid: len(_socket_inodes(pid) & accepted) for pid in workers}
            assert sum(per_worker.values()) >= CONNECTIONS
            assert all(count > 0 for count in per_worker.values()), per_worker
        finally:
            for channel in channels:
                channel.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=HANG) == 0
    assert all(_gone(pid) for pid in workers)
    with socket.create_server(("127.0.0.1", port)):  # the port is free again
        pass


def test_a_worker_that_dies_stops_the_others_and_fails(tmp_path):
    with serving(tmp_path / "serve.log") as (process, port, workers):
        victim, other = sorted(workers)
        os.kill(victim, signal.SIGKILL)
        assert process.wait(timeout=HANG) == 1
        deadline = time.monotonic() + HANG
        while not _gone(other):
            assert time.monotonic() < deadline, "the other worker kept running"
            time.sleep(0.1)
    assert f"worker {victim} exited with status -9" in (tmp_path / "serve.log").read_text()


def test_a_taken_port_is_refused_before_loading(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "cptrules", "serve", "--port", str(port), "--processes", "2"],
                             capture_output=True, text=True, timeout=HANG)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith(f"error: cannot serve on 127.0.0.1:{port}: ")
    assert "Traceback" not in run.stderr

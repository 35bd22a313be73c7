"""A reload builds the new snapshot aside while requests keep being answered from the old one,
then swaps it in: no request fails and none waits for the reload."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from cptrules import engine as engine_module
from cptrules.engine import Engine
from cptrules.server.lifecycle import Reloader
from cptrules.server.testing import client, running_server
from cptrules.v1 import code_rules_service_pb2 as svc

pytestmark = pytest.mark.integration

HANG = 60  # seconds: only to tell "answers" from "never answers", not a speed limit
RELOADS = 3
SERVED_DURING = 20  # answers a client must get while each reload is under way


def test_requests_are_answered_while_a_reload_builds_and_across_the_swap(engine, monkeypatch):
    own = Engine(engine.snapshot, engine.clock)  # reloads here leave the session's engine alone
    stop = threading.Event()
    failures: list[BaseException] = []
    answered = [0]
    real_build = engine_module.build_snapshot

    def build_held_open(*args, **kwargs):
        """The reload's build, held open until the client got answers while it was under way."""
        start, deadline = answered[0], time.monotonic() + HANG
        while answered[0] < start + SERVED_DURING:
            assert time.monotonic() < deadline and not failures, "no answers while the reload was building"
            time.sleep(0.01)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(engine_module, "build_snapshot", build_held_open)

    with running_server(own) as (_, port), client(port) as stub:
        def ask() -> None:
            while not stop.is_set():
                try:
                    reply = stub.GetCode(svc.GetCodeRequest(code="0556T"), timeout=HANG)
                    assert reply.code == "0556T"
                except (grpc.RpcError, AssertionError) as error:
                    failures.append(error)
                    return
                answered[0] += 1

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        reloader = Reloader(own)
        snapshots = [own.snapshot]
        for _ in range(RELOADS):
            reloader._reload_once()  # what a SIGHUP runs, on this thread instead of the reload thread
            snapshots.append(own.snapshot)
        stop.set()
        asker.join(HANG)
    assert not failures, failures[:1]
    assert len({id(s) for s in snapshots}) == RELOADS + 1  # each reload swapped in a new snapshot
    assert answered[0] >= RELOADS * SERVED_DURING

"""The pieces of fair export admission without a server: who a peer is, the per-peer count, and
which streams the stall watch ends (with a clock the test moves)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from cptrules.server.admission import PeerGate, peer_address, peer_token_id
from cptrules.server.stalls import StallWatch


class FakeContext:
    def __init__(self, peer: str = "ipv4:127.0.0.1:5000", metadata=()) -> None:
        self._peer, self._metadata = peer, metadata
        self.cancelled = 0

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self):
        return self._metadata

    def cancel(self) -> None:
        self.cancelled += 1


@pytest.mark.parametrize("peer, address", [
    ("ipv4:10.0.0.7:51234", "ipv4:10.0.0.7"),
    ("ipv6:[::1]:443", "ipv6:[::1]"),
    ("ipv6:%5B::1%5D:443", "ipv6:%5B::1%5D"),
    ("unix:/run/cptrules.sock", "unix:/run/cptrules.sock"),
])
def test_a_peer_is_its_address_without_the_port(peer, address):
    assert peer_address(FakeContext(peer)) == address


def test_a_token_peer_is_a_hash_prefix_never_the_token():
    ident = peer_token_id(FakeContext(metadata=[("authorization", "Bearer s3cret-token")]))
    assert ident.startswith("token:") and "s3cret" not in ident and len(ident) == len("token:") + 16
    assert ident != peer_token_id(FakeContext(metadata=[("authorization", "Bearer other")]))
    assert peer_token_id(FakeContext()) is None


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60))
def test_peer_gate_never_lets_a_peer_past_its_limit(steps):
    gate, held = PeerGate(2), {"a": 0, "b": 0, "c": 0}
    for peer, enter in steps:
        if enter:
            assert gate.try_enter(peer) == (held[peer] < 2)
            held[peer] = min(2, held[peer] + 1)
        elif held[peer]:
            gate.leave(peer)
            held[peer] -= 1
        assert gate.active(peer) == held[peer]


def test_only_a_set_left_waiting_past_the_timeout_ends_its_stream():
    """A reader that takes each set within the timeout reads on, however long the whole export
    takes; one that leaves a set waiting longer is ended, once, and nothing else is touched."""
    now = [0.0]
    watch = StallWatch(10.0, clock=lambda: now[0], background=False)
    reading, stalling = FakeContext(), FakeContext()
    fast = watch.watch(iter(range(100)), reading, "/m")
    slow = watch.watch(iter(range(100)), stalling, "/m")
    next(slow)
    for _ in range(20):  # 20 sets, 6 s of waiting each: 120 s in all
        next(fast)
        now[0] += 6.0
        if now[0] <= 10.0:
            assert watch.check() == 0
    assert watch.check() == 1
    assert (reading.cancelled, stalling.cancelled, watch.ended) == (0, 1, 1)
    now[0] += 100.0
    next(fast)
    assert watch.check() == 0 and reading.cancelled == 0


def test_a_stream_that_ended_or_was_closed_is_no_longer_watched():
    now = [0.0]
    watch = StallWatch(1.0, clock=lambda: now[0], background=False)
    context = FakeContext()
    assert list(watch.watch(iter(range(3)), context, "/m")) == [0, 1, 2]
    closed = watch.watch(iter(range(3)), context, "/m")
    next(closed)
    closed.close()
    now[0] += 5.0
    assert watch.check() == 0 and context.cancelled == 0


def test_the_limits_come_from_flags_or_the_environment():
    from cptrules import cli
    from cptrules.cli_options import apply_environment

    parser = cli.build_parser()
    apply_environment(parser, {"CPTRULES_MAX_EXPORTS_PER_PEER": "3", "CPTRULES_EXPORT_STALL_TIMEOUT": "7.5"})
    options = cli._server_options(parser.parse_args(["serve"]))
    assert (options.max_exports_per_peer, options.export_stall_timeout) == (3, 7.5)
    options = cli._server_options(parser.parse_args(["serve", "--max-exports-per-peer", "1"]))
    assert options.max_exports_per_peer == 1

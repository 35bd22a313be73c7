"""ExportFaqs over a real server: order, content, resumption, errors, flow control, cancellation."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from cptrules.engine import Engine
from cptrules.export.faqsets import content_hash
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from cptrules.server.testing import client, error_info, running_server
from cptrules.v1 import code_pb2, code_rules_service_pb2 as pb, code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration
CAT3 = code_pb2.CODE_CATEGORY_CATEGORY_III


def test_category_iii_streams_every_code_in_order_with_getfaq_answers(stub, engine):
    expected = engine.snapshot.codes_in("CATEGORY_III")
    sets = list(stub.ExportFaqs(pb.ExportFaqsRequest(category=CAT3)))
    assert [s.code for s in sets] == list(expected) and len(expected) > 500
    assert [s.position for s in sets] == list(range(1, len(sets) + 1))
    assert {s.total for s in sets} == {len(sets)}
    one = next(s for s in sets if s.code == "0556T")
    faq = stub.GetFaq(pb.GetFaqRequest(code="0556T"))
    assert list(one.entries) == list(faq.entries) and len(one.entries) >= 5
    assert one.content_hash == content_hash("0556T", faq.entries)
    assert len({s.content_hash for s in sets}) > 1


def test_explicit_codes_are_streamed_once_each_in_code_order(stub):
    sets = list(stub.ExportFaqs(pb.ExportFaqsRequest(codes=["0558t", "99213", " 0556T ", "0556T"])))
    assert [s.code for s in sets] == ["0556T", "0558T", "99213"]


def _named_fields(error: grpc.RpcError) -> set[str]:
    """Every request field an error names: BadRequest violations and ErrorInfo's index."""
    named = set(error_info(error).metadata.get(k, "") for k in ("index", "field"))
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            named.update(v.field for v in bad.field_violations)
    return named


@pytest.mark.parametrize("request_, code, field", [
    (pb.ExportFaqsRequest(codes=["99213", "99Z13"]), grpc.StatusCode.INVALID_ARGUMENT, "codes[1]"),
    (pb.ExportFaqsRequest(codes=["0556T", "0999T"]), grpc.StatusCode.NOT_FOUND, "1"),
    (pb.ExportFaqsRequest(codes=["0556T"], category=CAT3), grpc.StatusCode.INVALID_ARGUMENT, "category"),
    (pb.ExportFaqsRequest(category=CAT3, resume_token="forged.token"), grpc.StatusCode.INVALID_ARGUMENT,
     "resume_token"),
])
def test_bad_requests_fail_before_anything_is_streamed(stub, request_, code, field):
    stream = stub.ExportFaqs(request_)
    with pytest.raises(grpc.RpcError) as caught:
        next(stream)
    assert caught.value.code() == code
    assert field in _named_fields(caught.value)


def test_a_broken_stream_resumes_after_its_last_set(stub):
    request = pb.ExportFaqsRequest(category=CAT3)
    stream = stub.ExportFaqs(request)
    first = [next(stream) for _ in range(5)]
    stream.cancel()
    rest = list(stub.ExportFaqs(pb.ExportFaqsRequest(category=CAT3, resume_token=first[-1].resume_token)))
    whole = list(stub.ExportFaqs(request))
    assert [s.code for s in first + rest] == [s.code for s in whole]
    assert rest[0].position == 6 and rest[0].content_hash == whole[5].content_hash


def test_a_resume_token_is_bound_to_its_request(stub):
    token = next(stub.ExportFaqs(pb.ExportFaqsRequest(category=CAT3))).resume_token
    other = pb.ExportFaqsRequest(codes=["0556T", "0557T"], resume_token=token)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ExportFaqs(other))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    dated = pb.ExportFaqsRequest(category=CAT3, resume_token=token)
    dated.date_of_service.year, dated.date_of_service.month, dated.date_of_service.day = 2025, 3, 1
    with pytest.raises(grpc.RpcError):
        list(stub.ExportFaqs(dated))


class CountingEngine(Engine):
    """The session's snapshot, counting the FAQ sets the server has built."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.snapshot, engine.clock)
        self.built = 0
        self._lock = threading.Lock()

    def faq(self, *args, **kwargs):
        with self._lock:
            self.built += 1
        return super().faq(*args, **kwargs)


def _settled(read, seconds: float = 30.0) -> int:
    """The value of `read()` once it has stopped changing (or the hang detector fires)."""
    deadline = time.monotonic() + seconds
    last = read()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError("the server never stopped producing")


def test_a_slow_reader_holds_the_export_back_and_cancelling_stops_it(engine):
    counting = CountingEngine(engine)
    total = len(engine.snapshot.codes)
    with running_server(counting) as (_, port), client(port) as stub:
        stream = stub.ExportFaqs(pb.ExportFaqsRequest())
        for _ in range(3):
            next(stream)
        held = _settled(lambda: counting.built)
        # Only what fits in the transport's windows is built ahead of the reader.
        print(f"built ahead of a reader at 3 sets: {held} of {total}")
        assert 3 <= held < total // 4, (held, total)
        stream.cancel()
        stopped = _settled(lambda: counting.built)
        assert stopped < total // 4
        # The stream's place is given back: the server takes new calls at once.
        assert stub.GetFaq(pb.GetFaqRequest(code="0556T")).code == "0556T"


def test_stalled_exports_hold_only_export_places_never_health_watches(engine):
    """Readers that open exports and stop reading use up the export places; health watches
    (and reflection) have their own, so a load balancer's probe stream still gets through."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from cptrules.server.app import ServerOptions, build_server

    built = build_server(engine, "127.0.0.1:0", ServerOptions(max_exports=2, max_streams=2))
    built.grpc_server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            stalled = [stub.ExportFaqs(pb.ExportFaqsRequest()) for _ in range(2)]
            for stream in stalled:
                next(stream)
            with pytest.raises(grpc.RpcError) as refused:
                next(stub.ExportFaqs(pb.ExportFaqsRequest()))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
            for stream in stalled:
                stream.cancel()
    finally:
        built.grpc_server.stop(None)


# -- a fair share of export places: per peer, and stalled readers ended -------------------------

HANG = 30  # seconds: only to tell "happens" from "never happens"


def _export_server(engine, options, features=None):
    from cptrules.server.app import build_server

    built = build_server(engine, "127.0.0.1:0", options, features=features)
    built.grpc_server.start()
    return built


def _opened(stub, metadata=None):
    """An export that has started (one set read) and whose reader then stops reading."""
    stream = stub.ExportFaqs(pb.ExportFaqsRequest(), metadata=metadata)
    next(stream)
    return stream


def _refusal(stub, metadata=None) -> error_details_pb2.ErrorInfo:
    with pytest.raises(grpc.RpcError) as refused:
        next(stub.ExportFaqs(pb.ExportFaqsRequest(codes=["0556T"]), metadata=metadata, timeout=HANG))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = rpc_status.from_call(refused.value).details
    assert any(d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in details)
    return error_info(refused.value)


def test_one_address_holds_at_most_its_share_of_export_places(engine):
    """Without tokens a peer is its address: two connections from 127.0.0.1 are one peer."""
    from cptrules.server.app import ServerOptions

    built = _export_server(engine, ServerOptions(max_exports=3, max_exports_per_peer=2))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as one, \
                grpc.insecure_channel(f"127.0.0.1:{built.port}",
                                      options=[("grpc.use_local_subchannel_pool", 1)]) as two:
            stubs = [code_rules_service_pb2_grpc.CodeRulesServiceStub(c) for c in (one, two)]
            held = [_opened(stubs[0]), _opened(stubs[1])]
            info = _refusal(stubs[1])
            assert (info.reason, info.metadata["limit"], info.metadata["kind"]) == ("OVERLOADED_PEER", "2", "export")
            held.pop().cancel()
            assert len(list(stubs[1].ExportFaqs(pb.ExportFaqsRequest(codes=["0556T"]), timeout=HANG))) == 1
            for stream in held:
                stream.cancel()
    finally:
        built.grpc_server.stop(None)


def test_with_tokens_each_token_is_a_peer_and_the_server_limit_still_holds(engine, tmp_path):
    from cptrules.server.app import Features, ServerOptions
    from cptrules.server.auth import TokenSet, token_hash

    tokens = tmp_path / "tokens"
    tokens.write_text(f"{token_hash('client-a')}\n{token_hash('client-b')}\n")
    built = _export_server(engine, ServerOptions(max_exports=3, max_exports_per_peer=2),
                           Features(tokens=TokenSet(tokens)))
    a, b = [("authorization", "Bearer client-a")], [("authorization", "Bearer client-b")]
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            held = [_opened(stub, a), _opened(stub, a)]
            assert _refusal(stub, a).reason == "OVERLOADED_PEER"
            held.append(_opened(stub, b))  # the same address, another token: its own share
            info = _refusal(stub, b)  # b has one of its two, but the server's three are taken
            assert (info.reason, info.metadata["limit"]) == ("OVERLOADED", "3")
            for stream in held:
                stream.cancel()
    finally:
        built.grpc_server.stop(None)


def test_a_reader_that_stops_reading_is_ended_with_aborted_and_frees_its_place(engine):
    """A client opens an export and never reads it: the place is held, then, after the stall
    timeout, given back; the stalled call ends ABORTED."""
    from cptrules.server.app import ServerOptions

    built = _export_server(engine, ServerOptions(max_exports=1, max_exports_per_peer=1, export_stall_timeout=2.0))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{built.port}") as channel, \
                grpc.insecure_channel(f"127.0.0.1:{built.port}",
                                      options=[("grpc.use_local_subchannel_pool", 1)]) as other:
            stalled = _opened(code_rules_service_pb2_grpc.CodeRulesServiceStub(channel))
            probe = code_rules_service_pb2_grpc.CodeRulesServiceStub(other)
            assert _refusal(probe).reason in ("OVERLOADED", "OVERLOADED_PEER")  # the place is held
            deadline = time.monotonic() + HANG
            while True:
                try:
                    assert len(list(probe.ExportFaqs(pb.ExportFaqsRequest(codes=["0556T"]), timeout=HANG))) == 1
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                    assert time.monotonic() < deadline, "the stalled export never gave its place back"
                    time.sleep(0.05)
            with pytest.raises(grpc.RpcError) as ended:
                for _ in stalled:
                    pass
            assert ended.value.code() == grpc.StatusCode.ABORTED
            assert "resume_token" in ended.value.details()
    finally:
        built.grpc_server.stop(None)


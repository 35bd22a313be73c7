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

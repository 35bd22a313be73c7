"""A rule that overruns at request time fails that request alone, over gRPC: the next request
and the health check still answer. (The start-up check refuses such rules; these are built
with the data check off, the way a rule that overruns only for unsampled facts would get in.)"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import grpc
import pytest
from google.type import date_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from cptrules.engine import Engine
from cptrules.server.testing import error_info, running_server
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

TEN = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
OVER_BUDGET = (f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, {TEN}.all(e, "
               "a + b + c + d + e >= 0)))))")
TIMEOUT = 30  # seconds: only to tell a hang from an answer


@pytest.fixture(scope="module")
def hostile_port(tmp_path_factory, rules_dir: Path):
    rules = tmp_path_factory.mktemp("hostile") / "rules"
    shutil.copytree(rules_dir, rules)
    sunset = rules / "answers" / "sunset.j2"
    sunset.write_text(sunset.read_text().rstrip("\n") + "\n{% if status_indicator == 'C' %}"
                      "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
                      "{% endif %}\n")
    period = rules / "global_period.yaml"
    text = period.read_text()
    period.write_text(text.replace("rules:\n", "rules:\n  - id: greedy\n"
                                   f"    when: \"date_of_service > '2098-12-31' && {OVER_BUDGET}\"\n"
                                   "    set: {global_days_meaning: x}\n    because: x\n", 1))
    engine = Engine.load(rules, check_data=False, clock=lambda: dt.date(2026, 11, 27))
    with running_server(engine) as (_, port):
        yield port


@pytest.fixture(scope="module")
def hostile(hostile_port):
    with grpc.insecure_channel(f"127.0.0.1:{hostile_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield code_rules_service_pb2_grpc.CodeRulesServiceStub(channel), health_pb2_grpc.HealthStub(channel)



def test_an_overrunning_template_fails_that_request_alone(hostile):
    stub, health = hostile
    with pytest.raises(grpc.RpcError) as caught:
        stub.AnswerQuestion(svc.AnswerQuestionRequest(question="When does 0556T sunset?"), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert info.reason == "TEMPLATE_BUDGET_EXCEEDED" and info.metadata["template"] == "answers/sunset.j2"
    assert "answers/sunset.j2:" in caught.value.details() and "100,000 steps" in caught.value.details()
    with pytest.raises(grpc.RpcError) as faq:
        stub.GetFaq(svc.GetFaqRequest(code="0556T"), timeout=TIMEOUT)
    assert faq.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    answer = stub.AnswerQuestion(svc.AnswerQuestionRequest(question="When does 99213 sunset?"), timeout=TIMEOUT)
    assert answer.code == "99213" and answer.text
    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_rule_over_cels_budget_fails_that_request_alone(hostile):
    stub, health = hostile
    late = date_pb2.Date(year=2099, month=6, day=1)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCode(svc.GetCodeRequest(code="99213", date_of_service=late), timeout=TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert info.reason == "RULE_EVALUATION_FAILED"
    assert (info.metadata["file"], info.metadata["rule_id"]) == ("global_period.yaml", "greedy")
    assert "10,000 comprehension iterations" in caught.value.details()
    assert stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=TIMEOUT).code == "99213"
    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

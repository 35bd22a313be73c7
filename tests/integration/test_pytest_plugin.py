"""The `cptrules` pytest plugin as a client team uses it: installed, chosen by ini keys, giving a
real server on loopback (run in a pytester session of its own)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration


class SessionSnapshot:
    """Hands the outer session's loaded snapshot to the inner session (a load costs seconds;
    the outer session's own fixtures load through the plugin's ServerConfig.load)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    @pytest.fixture(scope="session")
    def outer_snapshot(self):
        return self.engine.snapshot


# The inner suite's conftest overrides the plugin's engine, as a client team may: same snapshot,
# the clock the plugin's configuration chose.
INNER_CONFTEST = """
    import pytest
    from cptrules.engine import Engine

    @pytest.fixture(scope="session")
    def cptrules_engine(outer_snapshot, cptrules_config):
        return Engine(outer_snapshot, clock=cptrules_config.clock())
"""


def test_a_client_suite_gets_a_pinned_server_from_the_plugin(pytester, engine):
    pytester.makeini("[pytest]\ncptrules_today = 2025-12-31\n")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_client="""
        import datetime as dt

        from cptrules.v1 import code_rules_service_pb2 as svc

        def test_pinned_server(cptrules_stub, cptrules_server, cptrules_config):
            assert cptrules_config.today == dt.date(2025, 12, 31)
            ruleset = cptrules_stub.GetRuleset(svc.GetRulesetRequest(), timeout=30)
            assert (ruleset.today.year, ruleset.today.month, ruleset.today.day) == (2025, 12, 31)
            answer = cptrules_stub.AnswerQuestion(svc.AnswerQuestionRequest(question="is 0556T permanent"),
                                                  timeout=30)
            assert answer.code == "0556T" and answer.date_of_service.year == 2025
            assert cptrules_server.address.startswith("127.0.0.1:")

        def test_a_server_of_its_own(cptrules_server_factory, cptrules_engine, cptrules_server):
            other = cptrules_server_factory(engine=cptrules_engine)
            assert other.port != cptrules_server.port
            with other.channel() as channel:
                from cptrules.v1 import code_rules_service_pb2_grpc
                stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
                assert stub.GetCode(svc.GetCodeRequest(code="99213"), timeout=30).code == "99213"
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", plugins=[SessionSnapshot(engine)])
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--cptrules-today", "2026-11-27",
                                          plugins=[SessionSnapshot(engine)])
    result.assert_outcomes(passed=1, failed=1)  # the command line beats the ini key


def test_the_plugin_lists_its_options(pytester):
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["*--cptrules-rules=*", "*--cptrules-data-dir=*", "*--cptrules-today=*"])


def test_a_bad_today_is_reported(pytester):
    pytester.makepyfile(test_client="def test_x(cptrules_config):\n    pass\n")
    result = pytester.runpytest_inprocess("--cptrules-today", "2026-13-01")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cptrules today '2026-13-01' is not a date*"])

"""Stored responses write the day into a template exactly where serialising for that day would,
and keep bytes per day when the day shapes the response in any other way."""

from __future__ import annotations

import datetime as dt

from google.type import date_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from cptrules.server.stored import Stored, dated_bytes, field_bytes, repeated_message
from cptrules.v1 import code_pb2
from cptrules.v1 import code_rules_service_pb2 as svc

days = st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)).map(dt.date.isoformat)
texts = st.text(max_size=30)


def _message(day: str, before: str, after: str, other_date: str) -> bytes:
    """A message that writes the day as text (a fired rule's input), as a Date, and holds a
    date that is not the day (which must never be rewritten)."""
    iso = dt.date.fromisoformat(day)
    other = dt.date.fromisoformat(other_date)
    message = code_pb2.Code(code=before, descriptor=after)
    message.provenance.fired_rules.add(rule_id=before, inputs={"date_of_service": day, "x": after})
    message.provenance.date_of_service.CopyFrom(date_pb2.Date(year=iso.year, month=iso.month, day=iso.day))
    message.date_of_service.CopyFrom(date_pb2.Date(year=iso.year, month=iso.month, day=iso.day))
    message.lifecycle.sunset_date.CopyFrom(date_pb2.Date(year=other.year, month=other.month, day=other.day))
    message.lifecycle.policy = other_date
    return message.SerializeToString(deterministic=True)


@settings(max_examples=200, deadline=None)
@given(days, days, texts, texts)
def test_a_template_writes_any_day_as_serialising_for_it_does(day, other, before, after):
    stored = Stored(lambda d: _message(d, before, after, other))
    assert stored.templated
    assert stored.on(day) == _message(day, before, after, other)


@settings(max_examples=50, deadline=None)
@given(days, texts)
def test_bytes_that_depend_on_the_day_otherwise_are_kept_per_day(day, before):
    def spelled(d: str) -> bytes:  # the day spelled out: its length varies
        when = dt.date.fromisoformat(d)
        return code_pb2.Code(code=before, descriptor=f"{when:%B} {when.day}, {when.year}").SerializeToString()

    assert dated_bytes(spelled) is None
    stored = Stored(spelled)
    assert not stored.templated
    assert stored.on(day) == spelled(day)


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_repeated_messages_are_assembled_as_protobuf_writes_them(items):
    codes = [code_pb2.Code(code=i.hex()) for i in items]
    response = svc.BatchGetCodesResponse(codes=codes)
    assert repeated_message(1, [c.SerializeToString() for c in codes]) == response.SerializeToString()
    assert field_bytes(2, b"x" * 200) == svc.ListCodesResponse(next_page_token="x" * 200).SerializeToString()


def test_a_response_remembered_by_its_request_is_not_served_on_another_day(engine):
    """Responses kept by request bytes are kept per day: an undated request asked again after
    midnight is answered for the new day."""
    from cptrules.engine import Engine
    from cptrules.server.servicer import CodeRulesServicer

    today = [dt.date(2025, 12, 31)]
    moving = Engine(engine.snapshot, lambda: today[0])
    get_code = CodeRulesServicer(moving).method_handlers()["GetCode"].unary_unary
    raw = svc.GetCodeRequest(code="0556T").SerializeToString()
    first = code_pb2.Code.FromString(get_code(raw, None))
    assert get_code(raw, None) == first.SerializeToString(deterministic=True)
    today[0] = dt.date(2026, 1, 1)
    second = code_pb2.Code.FromString(get_code(raw, None))
    assert (first.date_of_service.year, second.date_of_service.year) == (2025, 2026)


def test_a_method_outside_the_bytes_table_is_served_on_messages_of_its_kind():
    """Methods added the generated way (a servicer method on messages) keep working, streaming
    ones included, and the byte-served ones take and give bytes."""
    from cptrules.server.handlers import message_handler
    from cptrules.server.servicer import CodeRulesServicer

    streaming = message_handler(lambda request, context: iter(()), svc.ListCodesRequest, svc.ListCodesResponse,
                                server_streaming=True)
    assert streaming.response_streaming and not streaming.request_streaming and streaming.unary_stream
    handlers = CodeRulesServicer(engine=None).method_handlers()
    assert handlers["ListLocalities"].request_deserializer is not None
    assert handlers["GetCode"].request_deserializer is None and handlers["GetCode"].response_serializer is None


def test_caches_drop_the_least_recently_used_within_their_byte_bound():
    """A cache sized in bytes keeps what fits, drops the least recently used first, refuses a
    value larger than itself, and counts a replaced value once."""
    from cptrules.caches import ReportCache

    cache = ReportCache(1000, len)
    for key in "abcd":
        cache.put(key, b"x" * 300)
    assert [cache.get(k) is not None for k in "abcd"] == [False, True, True, True]
    cache.get("b")                       # b is now the most recently used
    cache.put("e", b"y" * 300)
    assert cache.get("c") is None and cache.get("b") is not None
    cache.put("b", b"z" * 100)           # replacing frees the old value's bytes
    cache.put("f", b"w" * 200)
    assert all(cache.get(k) is not None for k in "bdef")
    cache.put("huge", b"h" * 1001)
    assert cache.get("huge") is None and len(cache) == 4


def test_stored_entries_say_what_they_keep():
    """The derived cache is bounded by bytes: a templated entry counts its pieces, a per-day
    entry the most days it can hold."""
    templated = Stored(lambda day: _message(day, "a", "b", "2020-01-01"))
    assert templated.templated and 0 < templated.nbytes < 400
    per_day = Stored(lambda day: day.encode() * 3 if day[0] == "1" else day.encode())
    assert not per_day.templated
    assert per_day.nbytes == Stored.DAYS_KEPT * len(b"1111-11-11" * 3)


def test_a_code_resolved_as_written_is_remembered_per_snapshot(engine):
    """The shortcut for codes already resolved as written never lets other text through, and
    belongs to its snapshot: a reload onto data without the code does not know it."""
    import pytest

    from cptrules.engine import Engine
    from cptrules.errors import CodeNotFoundError, MalformedCodeError

    local = Engine(engine.snapshot.__class__(**{f: getattr(engine.snapshot, f) for f in (
        "ruleset", "data", "rules_dir", "data_dirs", "codes", "search_rules")}), engine.clock)
    assert local.get_code("0556T").code == "0556T"
    assert "0556T" in local.snapshot.resolved
    assert local.get_code(" cpt 0556t ").code == "0556T"
    assert " cpt 0556t " not in local.snapshot.resolved  # only canonical text is remembered
    with pytest.raises(MalformedCodeError):
        local.get_code("0556TT")
    with pytest.raises(CodeNotFoundError):
        local.get_code("0999T")
    fresh = engine.snapshot.__class__(**{f: getattr(engine.snapshot, f) for f in (
        "ruleset", "data", "rules_dir", "data_dirs", "codes", "search_rules")})
    assert fresh.resolved == set()  # a reloaded snapshot starts without the shortcut


def test_the_cache_budget_sizes_the_response_caches_and_survives_a_reload(rules_dir):
    """`serve --cache-mb` bounds what remembered responses hold, for every snapshot the server
    builds, reloads included."""
    import pytest

    from cptrules.caches import CacheBudget
    from cptrules.engine import Engine

    with pytest.raises(ValueError):
        CacheBudget(8)
    engine = Engine.load(rules_dir, check_data=False, budget=CacheBudget(32))
    first = engine.snapshot
    assert first.derived._limit == 16 << 20
    assert first.requests("GetCode")._limit == 16 << 20
    assert first._request_pool.limit == 16 << 20
    reloaded = engine.reload()
    assert reloaded is not first and reloaded.budget == CacheBudget(32)
    assert reloaded.derived._limit == 16 << 20


def test_methods_share_the_pool_and_a_flood_evicts_its_own_first():
    """One method alone may use the whole pool; when the pool is over, the largest member gives
    up its oldest entries, so the quiet method's entries stay."""
    from cptrules.caches import BytePool, ReportCache

    pool = BytePool(1000)
    quiet, flood = ReportCache(1000, len, pool), ReportCache(1000, len, pool)
    for n in range(3):
        quiet.put(n, b"q" * 100)
    for n in range(9):
        flood.put(n, b"f" * 100)
    assert pool.used <= 1000
    assert all(quiet.get(n) is not None for n in range(3))
    assert flood.get(0) is None and flood.get(8) is not None
    alone = ReportCache(1000, len, BytePool(1000))
    for n in range(10):
        alone.put(n, b"a" * 100)
    assert len(alone) == 10  # a method on its own uses the whole pool

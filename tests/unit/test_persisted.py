"""The persisted snapshot: a start on the same rules, data and code maps it in instead of
compiling, loading and classifying; any change to those builds afresh; a damaged, foreign or
hostile file is ignored and rebuilt, never trusted."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import random
import shutil
from pathlib import Path

import pytest

from cptrules import checked, persisted
from cptrules import engine as engine_module
from cptrules.embedded import default_data_dir, default_rules_dir
from cptrules.engine import Engine

TODAY = dt.date(2026, 11, 27)  # the session engine's day (conftest.py)


def _default_key() -> str:
    from cptrules.ruleset.compile import read_rules

    return checked.Inputs.of(read_rules(default_rules_dir()).revision(), [default_data_dir()]).key


@pytest.fixture
def persisted_default(engine: Engine) -> Path:
    """The session's snapshot file of the embedded default (written by the session engine's
    load, or by this fixture when that load came from the file of another start)."""
    path = persisted.path_for(_default_key())
    if not path.is_file():
        snap = engine.snapshot
        persisted.write(_default_key(), persisted.Stored(snap.ruleset, snap.data, snap.codes,
                                                         dict(snap.index_categories())))
    assert path.is_file()
    return path


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """Records each compile of rules and each load of data files."""
    from cptrules.data.store import CodeData
    from cptrules.ruleset import compile as compile_module

    calls: list[str] = []
    real_compile, real_load = compile_module.compile_ruleset, CodeData.load.__func__

    def compiled(sources):
        calls.append("compile")
        return real_compile(sources)

    def loaded(cls, folders):
        calls.append("data")
        return real_load(cls, folders)

    monkeypatch.setattr(compile_module, "compile_ruleset", compiled)
    monkeypatch.setattr(CodeData, "load", classmethod(loaded))
    return calls


@pytest.fixture
def private_cache(tmp_path, monkeypatch, persisted_default) -> Path:
    """A cache directory of this test's own holding a copy of the session's snapshot file and
    check records, so a test can damage them without a cold full check."""
    source = checked.cache_dir().parent
    target = tmp_path / "cache"
    shutil.copytree(source, target)
    monkeypatch.setenv("CPTRULES_CACHE_DIR", str(target))
    return target


def _trace(provenance) -> tuple:
    """A provenance as plain values (compiled rules of two loads are distinct objects)."""
    fired = tuple((f.rule.path, f.rule.line, f.rule.id, f.rule.when.text, f.inputs, f.outputs)
                  for f in provenance.fired)
    return fired, provenance.sources, provenance.ruleset_revision, provenance.date_of_service


def _same_answers(one: Engine, other: Engine) -> None:
    rng = random.Random(7)
    codes = rng.sample(one.snapshot.codes, 150) + ["0556T", "99213", "G0439"]
    days = [None, dt.date(2025, 1, 1), dt.date(2025, 10, 1), dt.date(2026, 3, 1), dt.date(2019, 7, 1)]
    for code in codes:
        day = rng.choice(days)
        a, b = one.get_code(code, day), other.get_code(code, day)
        assert a.facts == b.facts, code
        assert _trace(a.provenance) == _trace(b.provenance), code
        assert [e.text for e in one.faq(code, day)[1]] == [e.text for e in other.faq(code, day)[1]]
    for question in ("is cpt 0556t permenant?", "what is 99213 in zip 10001", "rvus for 27447 26"):
        a, b = one.answer(question), other.answer(question)
        assert a.text == b.text and _trace(a.provenance) == _trace(b.provenance)
    assert one.snapshot.codes == other.snapshot.codes
    assert dict(one.snapshot.index_categories()) == dict(other.snapshot.index_categories())
    assert one.ruleset.revision == other.ruleset.revision
    assert one.ruleset.fact_types == other.ruleset.fact_types


def test_a_warm_start_maps_the_snapshot_in_and_answers_as_a_built_one(persisted_default, builds,
                                                                       monkeypatch):
    warm = Engine.load(clock=lambda: TODAY)
    assert builds == []  # neither rules compiled nor data files read
    monkeypatch.setattr(persisted, "read", lambda key: None)
    built = Engine.load(check_data=False, clock=lambda: TODAY)
    assert builds == ["compile", "data"]
    _same_answers(warm, built)
    assert warm.ruleset.loaded_at > built.ruleset.loaded_at - dt.timedelta(minutes=5)
    assert warm.ruleset.root == str(default_rules_dir())


def test_a_rule_change_builds_afresh(persisted_default, builds, rules_copy):
    Engine.load(rules_copy, check_data=False, clock=lambda: TODAY)
    assert builds == []  # the same rules in another folder: the same snapshot
    path = rules_copy / "answers" / "what_is.j2"
    path.write_text(path.read_text() + "\n")
    changed = Engine.load(rules_copy, check_data=False, clock=lambda: TODAY)
    assert builds == ["compile", "data"]
    assert changed.ruleset.root == str(rules_copy)


def test_a_data_or_code_change_changes_the_key(tmp_path, monkeypatch):
    revision = "sha256:0123456789abcdef"
    extra = tmp_path / "data"
    (extra / "pfs").mkdir(parents=True)
    base = checked.Inputs.of(revision, [default_data_dir(), extra])
    assert checked.Inputs.of(revision, [default_data_dir(), extra]).key == base.key
    (extra / "notes.txt").write_text("x")
    with_file = checked.Inputs.of(revision, [default_data_dir(), extra])
    (extra / "notes.txt").write_text("y")
    edited = checked.Inputs.of(revision, [default_data_dir(), extra])
    assert len({base.key, with_file.key, edited.key}) == 3
    assert checked.Inputs.of(revision, [extra, default_data_dir()]).key != edited.key  # order counts
    monkeypatch.setattr(checked, "code_digest", lambda: "another version of the code")
    assert checked.Inputs.of(revision, [default_data_dir(), extra]).key != edited.key
    assert base.check_key(TODAY) != base.check_key(TODAY + dt.timedelta(days=1)) != base.key


def test_data_folders_count_by_their_files(persisted_default, builds, tmp_path):
    extra = tmp_path / "data"
    (extra / "pfs").mkdir(parents=True)
    Engine.load(data_dirs=[extra, tmp_path / "none yet"], check_data=False, clock=lambda: TODAY)
    assert builds == []  # folders with no files hold nothing: the embedded default's snapshot
    (extra / "notes.txt").write_text("x")
    Engine.load(data_dirs=[extra], check_data=False, clock=lambda: TODAY)
    assert builds == ["compile", "data"]  # another file: another snapshot


def test_a_damaged_file_is_ignored_rebuilt_and_written_again(private_cache, builds):
    path = persisted.path_for(_default_key())
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert persisted.read(_default_key()) is None
    engine = Engine.load(clock=lambda: TODAY)  # the day's check record is in the copied cache
    assert builds == ["compile", "data"]
    assert persisted.read(_default_key()) is not None  # rebuilt and persisted again
    assert engine.get_code("0556T").facts["code"] == "0556T"


@pytest.mark.parametrize("damage", ["empty", "truncated", "magic", "other key", "foreign global"])
def test_an_untrustworthy_file_is_never_used(private_cache, damage, tmp_path):
    import hashlib

    key = _default_key()
    path = persisted.path_for(key)
    raw = path.read_bytes()
    head = len(persisted.MAGIC) + hashlib.sha256().digest_size
    marker = tmp_path / "ran"

    def sealed(payload: bytes) -> bytes:
        return persisted.MAGIC + hashlib.sha256(payload).digest() + payload

    if damage == "empty":
        raw = b""
    elif damage == "truncated":
        raw = raw[: len(raw) * 2 // 3]
    elif damage == "magic":
        raw = b"cptrules snapshot 0\n" + raw[len(persisted.MAGIC):]
    elif damage == "other key":  # a sound file stored under another name
        import io

        stored = persisted.read(key)
        buffer = io.BytesIO()
        persisted._Pickler(buffer).dump(("0" * 64, stored))
        raw = sealed(buffer.getvalue())
    else:  # a sealed pickle that would run a command if it were trusted
        class Hostile:
            def __reduce__(self):
                return os.system, (f"touch {marker}",)

        raw = sealed(pickle.dumps((key, Hostile())))
    path.write_bytes(raw)
    assert persisted.read(key) is None
    assert not marker.exists()


def test_a_snapshot_is_not_persisted_when_its_inputs_change_while_it_loads(tmp_path, monkeypatch, rules_copy):
    monkeypatch.setenv("CPTRULES_CACHE_DIR", str(tmp_path / "cache"))
    from cptrules.ruleset import compile as compile_module

    real = compile_module.compile_ruleset
    monkeypatch.setattr(engine_module, "ruleset_problems", lambda *a, **k: (None, []))

    def edited_meanwhile(sources):
        ruleset = real(sources)
        path = rules_copy / "answers" / "what_is.j2"
        path.write_text(path.read_text() + "\n")
        return ruleset

    monkeypatch.setattr(compile_module, "compile_ruleset", edited_meanwhile)
    Engine.load(rules_copy, clock=lambda: TODAY)
    assert not persisted.folder().exists() or not list(persisted.folder().iterdir())


def test_old_snapshot_files_are_pruned(tmp_path, monkeypatch, engine):
    monkeypatch.setenv("CPTRULES_CACHE_DIR", str(tmp_path / "cache"))
    stored = persisted.Stored(engine.ruleset, None, (), {})  # small: only the pruning is tested
    keys = [f"{index:064d}" for index in range(persisted.KEEP + 3)]
    for key in keys[:-1]:
        persisted.write(key, stored)
    assert sorted(p.stem for p in persisted.folder().glob("*.snapshot")) == keys[2:-1]
    assert persisted.read(keys[2]) is not None  # the oldest left, used again
    persisted.write(keys[-1], stored)
    assert sorted(p.stem for p in persisted.folder().glob("*.snapshot")) == [keys[2], *keys[4:]]

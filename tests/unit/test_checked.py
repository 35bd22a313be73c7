"""A pair of rules and data that passed the full check is not checked again on the same day;
any change to the rules, the data, the code or the day checks again."""

import datetime as dt
import shutil

import pytest

from cptrules import checked, engine as engine_module
from cptrules.embedded import default_data_dir
from cptrules.engine import Engine

DAY = dt.date(2026, 11, 27)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("CPTRULES_CACHE_DIR", str(folder))
    return folder


def _count_checks(monkeypatch) -> list[int]:
    calls = []
    real = engine_module.ruleset_problems

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "ruleset_problems", counted)
    return calls


def test_a_second_start_skips_the_check_and_a_change_redoes_it(cache, monkeypatch, rules_copy):
    calls = _count_checks(monkeypatch)
    Engine.load(rules_copy, clock=lambda: DAY)
    assert len(calls) == 1 and list((cache / "checked").iterdir())
    Engine.load(rules_copy, clock=lambda: DAY)
    assert len(calls) == 1  # warm: the same rules, data, code and day
    Engine.load(rules_copy, clock=lambda: DAY + dt.timedelta(days=1))
    assert len(calls) == 2  # another day: today's date is part of the check
    answers = rules_copy / "answers" / "what_is.j2"
    answers.write_text(answers.read_text() + "\n")
    Engine.load(rules_copy, clock=lambda: DAY)
    assert len(calls) == 3  # another revision


def test_changed_data_is_checked_again(cache, monkeypatch, tmp_path):
    calls = _count_checks(monkeypatch)
    extra = tmp_path / "data"
    (extra / "pfs").mkdir(parents=True)
    Engine.load(data_dirs=[extra], clock=lambda: DAY)
    shutil.copy(default_data_dir() / "pfs" / "RVU25D.json.gz", extra / "stray.bin")
    Engine.load(data_dirs=[extra], clock=lambda: DAY)
    assert len(calls) == 2


def test_a_failed_check_leaves_no_record_and_a_bad_record_is_ignored(cache, rules_copy):
    from cptrules.errors import RuleFileErrors

    path = rules_copy / "code_status.yaml"
    path.write_text(path.read_text().replace("expect: {code_status: replaced}", "expect: {code_status: active}", 1))
    with pytest.raises(RuleFileErrors):
        Engine.load(rules_copy, clock=lambda: DAY)
    assert not (cache / "checked").exists() or not list((cache / "checked").iterdir())
    print_ = checked.fingerprint("sha256:x", [], DAY)
    (cache / "checked").mkdir(parents=True, exist_ok=True)
    (cache / "checked" / print_).write_text("something else")
    assert not checked.passed_before(print_)


def test_the_same_data_in_another_folder_is_the_same_check(cache, monkeypatch, tmp_path):
    calls = _count_checks(monkeypatch)
    for name in ("one", "two"):
        (tmp_path / name / "pfs").mkdir(parents=True)
        Engine.load(data_dirs=[tmp_path / name], clock=lambda: DAY)
    assert len(calls) == 1

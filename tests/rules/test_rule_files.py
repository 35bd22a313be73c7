"""Rule files as analysts write them: the default set passes its own tests, and each kind of
mistake is reported with file:line by `cptrules check` and refused by `serve`."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cptrules.cli import main
from cptrules.engine import Engine
from cptrules.errors import RuleFileErrors
from cptrules.ruleset import load_ruleset
from cptrules.ruleset.check import run_rule_tests


def test_default_rules_pass_their_tests_with_full_coverage(rules_dir):
    report = run_rule_tests(load_ruleset(rules_dir))
    assert report.outcomes and not report.failed, [o.failures for o in report.failed]
    assert report.untested_rules == []


def test_check_command_passes_on_defaults(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "failed" in out and "0 failed" in out and "rule coverage 100%" in out


def edit(path: Path, old: str, new: str) -> int:
    """Replace text in a rule file; return the 1-based line where the change starts."""
    text = path.read_text()
    assert old in text, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    return line


def check_output(rules: Path, capsys) -> str:
    assert main(["check", str(rules)]) == 1
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_bad_yaml_syntax(rules_copy, capsys):
    line = edit(rules_copy / "fee_schedule.yaml", "hit: first", "hit: [first")
    out = check_output(rules_copy, capsys)
    assert re.search(r"fee_schedule\.yaml:\d+: YAML_SYNTAX", out)
    assert int(re.search(r"fee_schedule\.yaml:(\d+): YAML_SYNTAX", out).group(1)) >= line


def test_unknown_field(rules_copy, capsys):
    """Reported on the misspelt key's own line, once, with the field it was meant to be."""
    line = edit(rules_copy / "lifecycle.yaml", "    because: A source states", "    becuase: x\n    because: A source states")
    out = check_output(rules_copy, capsys)
    assert re.findall(r"lifecycle\.yaml:\d+: .*", out) == [
        f"lifecycle.yaml:{line}: SCHEMA: rules/{rule_index(rules_copy / 'lifecycle.yaml', line)}: "
        "unknown field 'becuase' (did you mean 'because'?)"]


def test_misspelt_required_field_is_one_report(rules_copy, capsys):
    line = edit(rules_copy / "global_period.yaml", "    because: CMS global code 010.", "    becase: CMS global code 010.")
    out = check_output(rules_copy, capsys)
    assert re.findall(r"global_period\.yaml:\d+: .*", out) == [
        f"global_period.yaml:{line}: SCHEMA: rules/1: unknown field 'becase' (did you mean 'because'?)"]


def item_start(path: Path, line: int) -> int:
    """The line where the list item holding a line starts (a test's reports point there)."""
    lines = path.read_text().splitlines()
    while not lines[line - 1].lstrip().startswith("- "):
        line -= 1
    return line


def rule_index(path: Path, line: int) -> int:
    """Index of the rule that holds a line of a table file."""
    lines = path.read_text().splitlines()[:line]
    return sum(1 for text in lines if text.startswith("  - id: ")) - 1


def test_every_problem_of_one_file_is_reported_at_once(rules_copy, capsys):
    """An unknown field, a duplicate id and a failing test in one file: three reports, each on
    its own line, and nothing else (issue 7)."""
    path = rules_copy / "global_period.yaml"
    unknown = edit(path, "    because: CMS global code 000.", "    because: CMS global code 000.\n    sorce: CMS") + 1
    duplicate = edit(path, "\ntests:\n", "\n  - id: global-010\n    when: global_days == 'QQQ'\n"
                     "    set: {global_days_meaning: x}\n    because: x\ntests:\n") + 1
    failing = edit(path, "  - {name: maternity, given: {global_days: MMM}, fired: [global-mmm], expect: {}}",
                   "  - {name: maternity, given: {global_days: MMM}, fired: [global-xxx], expect: {}}")
    out = check_output(rules_copy, capsys)
    assert re.findall(r"\S+\.yaml:\d+: [A-Z_]+", out) == [
        f"global_period.yaml:{unknown}: SCHEMA", f"global_period.yaml:{duplicate}: DUPLICATE_ID",
        f"global_period.yaml:{failing}: TEST_FAILED"]
    assert "unknown field 'sorce' (did you mean 'source'?)" in out
    assert "rule id 'global-010' is also used at global_period.yaml:" in out
    assert "maternity: fired: expected ['global-xxx'], got ['global-mmm']" in out


def test_tests_of_tables_before_a_broken_one_still_run(rules_copy, capsys):
    """A CEL error in a later table does not hide a failing test of an earlier one, and the
    later table's own tests are not run against its half-compiled rules."""
    failing = item_start(rules_copy / "category.yaml", edit(
        rules_copy / "category.yaml", "expect: {category: CATEGORY_II}", "expect: {category: CATEGORY_I}"))
    broken = edit(rules_copy / "coverage.yaml", "when: status_indicator == 'N' && pfs_covers_date",
                  "when: status_indicator == 1 && pfs_covers_date")
    out = check_output(rules_copy, capsys)
    assert re.findall(r"\S+\.yaml:\d+: [A-Z_]+", out) == [f"category.yaml:{failing}: TEST_FAILED",
                                                          f"coverage.yaml:{broken}: CEL"]


def test_cel_type_error_and_typo_all_reported(rules_copy, capsys):
    line1 = edit(rules_copy / "fee_schedule.yaml", "when: status_indicator == 'A' && non_facility_total_rvu",
                 "when: status_indicator == 1 && non_facility_total_rvu")
    line2 = edit(rules_copy / "coverage.yaml", "when: status_indicator == 'N' && pfs_covers_date",
                 "when: stauts_indicator == 'N' && pfs_covers_date")
    out = check_output(rules_copy, capsys)
    assert f"fee_schedule.yaml:{line1}: CEL" in out and "no matching overload" in out
    assert f"coverage.yaml:{line2}: CEL" in out and "stauts_indicator" in out


@pytest.mark.parametrize("path, old, new, kind", [
    ("fee_schedule.yaml", "set: {rvu_availability: contractor_priced}",
     "set: {rvu_availability: carrier_priced}", "VALUE"),
    ("global_period.yaml", "set: {global_days_meaning: \"a maternity code",
     "set: {global_day_meaning: \"a maternity code", "UNKNOWN_OUTPUT"),
])
def test_bad_set_is_located(rules_copy, capsys, path, old, new, kind):
    line = edit(rules_copy / path, old, new)
    assert f"{path}:{line}: {kind}" in check_output(rules_copy, capsys)


def test_unique_hit_conflict_found_on_real_codes(rules_copy, capsys):
    text = (rules_copy / "category.yaml").read_text()
    addition = ("  - id: any-letter-suffix\n    when: code.matches('^[0-9]{4}[A-Z]$')\n"
                "    set: {category: CATEGORY_III, category_label: CPT Category III, code_system: CPT}\n"
                "    let: {code_label: \"'CPT ' + code\"}\n    because: too broad\n")
    marker = "tests:\n"
    line = text[: text.index(marker)].count("\n") + 1
    (rules_copy / "category.yaml").write_text(text.replace(marker, addition + marker, 1))
    out = check_output(rules_copy, capsys)
    assert "CONFLICT" in out or "unique-hit" in out
    assert re.search(rf"category\.yaml:{line}: ", out)


def test_unreachable_rule(rules_copy, capsys):
    text = (rules_copy / "global_period.yaml").read_text()
    text = text.replace("rules:\n", "rules:\n  - id: always\n    when: \"true\"\n    set: {global_days_meaning: x}\n    because: x\n", 1)
    (rules_copy / "global_period.yaml").write_text(text)
    out = check_output(rules_copy, capsys)
    assert "UNREACHABLE" in out


def test_template_naming_an_unknown_fact(rules_copy, capsys):
    path = rules_copy / "answers" / "sunset.j2"
    path.write_text(path.read_text() + "\n{{ sunset_dat }}\n")
    out = check_output(rules_copy, capsys)
    assert re.search(r"answers/sunset\.j2:\d+: TEMPLATE: unknown fact 'sunset_dat'", out)


def test_failing_rule_test_is_reported(rules_copy, capsys):
    edit(rules_copy / "category.yaml", "expect: {category: CATEGORY_II}", "expect: {category: CATEGORY_I}")
    out = check_output(rules_copy, capsys)
    assert "TEST_FAILED" in out and "category.yaml:" in out


def test_serve_refuses_broken_rules(rules_copy):
    edit(rules_copy / "category.yaml", "\nhit: unique", "\nhit: sometimes")
    with pytest.raises(RuleFileErrors) as caught:
        Engine.load(rules_copy, check_data=False)
    assert any(p.path == "category.yaml" and p.line > 0 for p in caught.value.problems)
    run = subprocess.run([sys.executable, "-m", "cptrules", "serve", "--rules", str(rules_copy), "--port", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "category.yaml:" in run.stderr


def test_reload_keeps_serving_the_last_good_ruleset(rules_copy):
    engine = Engine.load(rules_copy, check_data=False)
    before = engine.get_code("0556T").facts
    revision = engine.ruleset.revision
    edit(rules_copy / "status_indicator.yaml", "when: status_indicator == 'C'", "when: status_indicator == C")
    with pytest.raises(RuleFileErrors):
        engine.reload()
    assert engine.ruleset.revision == revision
    assert engine.get_code("0556T").facts == before


def test_unknown_template_filter_and_non_utf8_file(rules_copy, capsys):
    path = rules_copy / "answers" / "synonyms.j2"
    path.write_text(path.read_text() + "\n{{ code | shout }}\n")
    (rules_copy / "extra.yaml").write_bytes(b"table: x\n\xff\xfe broken\n")
    out = check_output(rules_copy, capsys)
    assert re.search(r"answers/synonyms\.j2:\d+: TEMPLATE: .*shout", out)
    assert "extra.yaml:2: ENCODING" in out


def test_one_mistake_one_report(rules_copy, capsys):
    """A broken table does not make its facts' templates, FAQ entries and phrasings look broken."""
    edit(rules_copy / "coverage.yaml", "\nhit: collect", "\nhit: [collect")
    out = check_output(rules_copy, capsys)
    assert "coverage.yaml:" in out and "YAML_SYNTAX" in out
    assert "unknown fact 'coverage_notes'" not in out and "NO_TEMPLATE" not in out


def test_misnamed_table_and_misspelt_fact_get_suggestions(rules_copy, capsys):
    line = edit(rules_copy / "ruleset.yaml", "  - coverage.yaml", "  - coverge.yaml")
    edit(rules_copy / "fee_schedule.yaml", "when: \"!pfs_covers_date\"", "when: \"!pfs_cover_date\"")
    out = check_output(rules_copy, capsys)
    assert f"ruleset.yaml:{line}: MISSING_FILE: coverge.yaml does not exist (did you mean coverage.yaml?)" in out
    assert "did you mean pfs_covers_date?" in out


def test_check_json_when_rules_do_not_load(rules_copy, capsys):
    import json

    edit(rules_copy / "category.yaml", "\nhit: unique", "\nhit: [unique")
    assert main(["check", str(rules_copy), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert any("category.yaml:" in p for p in report["failed"])


def test_failing_phrasing_example_is_located_and_refused(rules_copy, capsys):
    line = edit(rules_copy / "questions.yaml", '{q: "0556T", intent: what_is, codes: [0556T]}',
                '{q: "0556T", intent: rvu, codes: [0556T]}')
    out = check_output(rules_copy, capsys)
    assert f"questions.yaml:{line}: TEST_FAILED" in out
    with pytest.raises(RuleFileErrors):
        Engine.load(rules_copy, check_data=False)


def append_line(path: Path, text: str) -> int:
    """Append one line to a file; return its 1-based line number."""
    body = path.read_text()
    if not body.endswith("\n"):
        body += "\n"
    path.write_text(body + text + "\n")
    return body.count("\n") + 1


def test_template_failing_only_when_rendered_is_refused(rules_copy, capsys):
    """Category I codes render fine; the sandbox refuses the PLA branch, which no rule test renders."""
    line = append_line(rules_copy / "answers" / "what_is.j2", "{% if category == 'PLA' %}{{ ''.__class__.__mro__ }}{% endif %}")
    out = check_output(rules_copy, capsys)
    assert re.search(rf"answers/what_is\.j2:{line}: TEMPLATE_RENDER: access to attribute '__class__' .* \(for \w+ on ", out)
    with pytest.raises(RuleFileErrors) as caught:
        Engine.load(rules_copy)
    assert ("answers/what_is.j2", line, "TEMPLATE_RENDER") in [(p.path, p.line, p.kind) for p in caught.value.problems]


def test_template_overrunning_for_some_codes_is_refused(rules_copy, capsys):
    line = append_line(rules_copy / "answers" / "sunset.j2",
                       "{% if status_indicator == 'C' %}{% for a in range(100000) %}{% for b in range(100000) %}"
                       "{% endfor %}{% endfor %}{% endif %}")
    out = check_output(rules_copy, capsys)
    assert re.search(rf"answers/sunset\.j2:{line}: TEMPLATE_RENDER: the template takes more than 100,000 steps", out)


def test_faq_question_failing_for_some_facts_is_located(rules_copy, capsys):
    line = edit(rules_copy / "faq.yaml", 'question: "When does {{ code }} sunset?"',
                'question: "When does {{ code }} sunset ({{ hcpcs_termination_date | longdate }})?"')
    out = check_output(rules_copy, capsys)
    assert re.search(rf"faq\.yaml:{line}: TEMPLATE_RENDER: Invalid isoformat string: ''", out)


def test_include_in_a_template_is_refused_at_load(rules_copy, capsys):
    line = append_line(rules_copy / "answers" / "rvu.j2", "{% include 'billing.j2' %}")
    out = check_output(rules_copy, capsys)
    assert f"answers/rvu.j2:{line}: TEMPLATE: include is not available in answer templates" in out


def test_yaml_alias_bomb_is_refused_quickly(rules_copy):
    """4.5 KB that would expand to 10**9 scalars; answered within a minute rather than never."""
    levels = [f"a0: &a0 [{', '.join(['lol'] * 10)}]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (rules_copy / "global_period.yaml").write_text("\n".join(levels) + "\n")
    run = subprocess.run([sys.executable, "-m", "cptrules", "check", str(rules_copy)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "global_period.yaml:2: YAML_ALIAS: YAML alias *a0 is refused" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


TEN = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
OVER_BUDGET = (f"{TEN}.all(a, {TEN}.all(b, {TEN}.all(c, {TEN}.all(d, {TEN}.all(e, "
               "a + b + c + d + e >= 0)))))")


def add_first_rule(path: Path, when: str) -> int:
    """Put a rule first in global_period.yaml's rules; return its line."""
    text = path.read_text()
    line = text[: text.index("rules:\n")].count("\n") + 2
    rule = (f"  - id: greedy\n    when: \"{when}\"\n    set: {{global_days_meaning: x}}\n"
            "    because: x\n")
    path.write_text(text.replace("rules:\n", "rules:\n" + rule, 1))
    return line


def test_cel_over_its_budget_is_a_located_rule_error(rules_copy, capsys):
    line = add_first_rule(rules_copy / "global_period.yaml", OVER_BUDGET)
    out = check_output(rules_copy, capsys)
    assert f"global_period.yaml:{line}: EVALUATION: rule greedy failed for" in out
    assert "10,000 comprehension iterations" in out and "Traceback" not in out
    assert re.search(r"global_period\.yaml:\d+: TEST_FAILED: .*evaluation failed", out)


def test_date_gated_cel_over_budget_is_found_at_check_time(rules_copy, capsys):
    """Only dates years after the loaded releases reach the costly part of the rule: the
    check evaluates sampled codes on such dates, so the rule is refused, not served."""
    line = add_first_rule(rules_copy / "global_period.yaml", f"date_of_service > '2030-06-30' && {OVER_BUDGET}")
    out = check_output(rules_copy, capsys)
    assert f"global_period.yaml:{line}: EVALUATION: rule greedy failed for" in out
    assert "Traceback" not in out

"""One data directory for every command: --data-dir, CPTRULES_DATA_DIR, else the platform's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cptrules.cli import main
from cptrules.data.location import ENV_VAR, resolve_data_dir

EXCERPT = Path("excerpts-2026") / "PPRRVU2026_Oct_nonQPP.csv"


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    """HOME and XDG_DATA_HOME on an empty folder, and no CPTRULES_DATA_DIR."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    return home


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cptrules", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_import_then_ask_needs_no_data_flag(empty_home, cms_dir):
    """The issue's case: import-pfs with no flag, then ask answers from the imported release."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(HOME=os.environ["HOME"], XDG_DATA_HOME=os.environ["XDG_DATA_HOME"])
    imported = _cli("import-pfs", str(cms_dir / EXCERPT), "--partial", env=env)
    assert imported.returncode == 0, imported.stderr
    stored = empty_home / ".local" / "share" / "cptrules" / "pfs" / "RVU26D.json.gz"
    assert stored.is_file() and str(stored) in imported.stdout
    asked = _cli("ask", "RVUs for 27447", "--date", "2026-10-15", env=env)
    assert asked.returncode == 0, asked.stderr
    assert "RVU26D" in asked.stdout and "19.11" in asked.stdout


def test_serve_refuses_a_missing_data_dir_in_one_line(tmp_path):
    """serve --data-dir /no/such/dir used to start on the embedded data with rc 0."""
    missing = tmp_path / "no" / "such" / "dir"
    served = _cli("serve", "--data-dir", str(missing), "--port", "0", env=dict(os.environ), timeout=60)
    assert served.returncode != 0
    lines = served.stderr.strip().splitlines()
    assert lines == [f"error: {missing} (from --data-dir): no such data directory"]


@pytest.mark.parametrize("command", [
    ["ask", "RVUs for 27447"], ["faq", "99213"], ["explain", "99213"], ["check"],
    ["diff", "RVU25D", "RVU26D"], ["serve", "--port", "0"], ["data", "list"],
])
@pytest.mark.parametrize("problem", ["missing", "file", "pfs_subfolder", "unrelated"])
def test_bad_data_dirs_fail_before_loading(tmp_path, monkeypatch, capsys, cms_dir, command, problem):
    """Every reader refuses a bad --data-dir in one line, before any rules or data load."""
    from cptrules.data.pfs import import_pfs_csv, write_release
    from cptrules.engine import Engine

    def no_loading(*_a, **_k):
        raise AssertionError("loaded before checking the data directory")

    monkeypatch.setattr(Engine, "load", no_loading)
    monkeypatch.setattr("cptrules.data.store.CodeData.load", no_loading)
    target = tmp_path / "data"
    if problem == "file":
        target.write_text("not a folder")
    elif problem == "pfs_subfolder":
        write_release(import_pfs_csv(cms_dir / EXCERPT, partial=True), target)
        target = target / "pfs"
    elif problem == "unrelated":
        target.mkdir()
        (target / "notes.txt").write_text("hello")
    assert main([*command, "--data-dir", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    says = {"missing": "no such data directory", "file": "is a file, not a data directory",
            "pfs_subfolder": "looks like a pfs/hcpcs subfolder", "unrelated": "holds no imported data"}
    assert err.startswith(f"error: {target}") and says[problem] in err and len(err.splitlines()) == 1


def test_the_environment_variable_is_the_data_dir(tmp_path, monkeypatch, cms_dir, capsys):
    data = tmp_path / "env-data"
    monkeypatch.setenv(ENV_VAR, str(data))
    assert main(["import-pfs", str(cms_dir / EXCERPT), "--partial"]) == 0
    assert (data / "pfs" / "RVU26D.json.gz").is_file()
    assert main(["ask", "RVUs for 27447", "--date", "2026-10-15"]) == 0
    assert "19.11" in capsys.readouterr().out
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone"))
    assert main(["ask", "RVUs for 27447"]) == 1
    assert f"{tmp_path / 'gone'} (from CPTRULES_DATA_DIR): no such data directory" in capsys.readouterr().err


def test_the_flag_wins_and_the_old_flag_still_works(tmp_path, monkeypatch, cms_dir, capsys):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "gone"))
    data = tmp_path / "flag-data"
    assert main(["import-pfs", str(cms_dir / EXCERPT), "--partial", "--data-dir", str(data)]) == 0
    assert main(["explain", "27447", "--date", "2026-10-15", "--data", str(data)]) == 0
    assert "work_rvu = 19.11" in capsys.readouterr().out


def test_the_default_directory_not_existing_means_no_imports(empty_home, capsys):
    location = resolve_data_dir()
    assert location.path == empty_home / ".local" / "share" / "cptrules" and not location.explicit
    assert not location.path.exists() and location.for_reading() == location.path
    assert main(["ask", "RVUs for 99213", "--date", "2025-11-01"]) == 0
    assert "RVU25D" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    assert "no imported data" in capsys.readouterr().err


def test_an_explicit_empty_directory_holds_no_imports_yet(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "list", "--data-dir", str(empty)]) == 0
    assert "no imported data" in capsys.readouterr().err


def test_resolution_order(tmp_path):
    assert resolve_data_dir(tmp_path / "a", {ENV_VAR: str(tmp_path / "b")}).path == tmp_path / "a"
    assert resolve_data_dir(None, {ENV_VAR: str(tmp_path / "b")}).source == ENV_VAR
    assert resolve_data_dir(None, {ENV_VAR: "  "}).source == "default"

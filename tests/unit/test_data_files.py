"""Stored data files are checked whole on load, and an import killed mid-write leaves the old
file or the new one, never a part the server would load."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cptrules.cli import main
from cptrules.data.files import CHECKSUM, content_checksum, data_files
from cptrules.data.hcpcs import HcpcsFile
from cptrules.data.pfs import FIELDS, PfsRelease, import_pfs_csv, write_release
from cptrules.data.store import CodeData, list_imports
from cptrules.errors import DataFileError

EXCERPT = Path("excerpts-2026") / "PPRRVU2026_Oct_nonQPP.csv"


def _payload(path: Path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


def _store(path: Path, payload: dict, reseal: bool = True) -> None:
    """Write a payload as the importer would, optionally with a checksum that fits the change."""
    if reseal:
        payload = {**payload, CHECKSUM: content_checksum(payload)}
    path.write_bytes(gzip.compress(json.dumps(payload, sort_keys=True).encode(), mtime=0))


def _drop(payload: dict, key: str) -> dict:
    return {k: v for k, v in payload.items() if k != key}


def _row_change(payload: dict, change) -> dict:
    rows = [list(r) for r in payload["rows"]]
    change(rows)
    return {**payload, "rows": rows}


# Each damage: (name, how to damage the stored file, what the one-line report says)
DAMAGES = {
    "truncated gzip": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
                       "damaged or truncated gzip data"),
    "not gzip": (lambda p: p.write_text("release,RVU26D\n"), "not a gzip file"),
    "empty file": (lambda p: p.write_bytes(b""), "is empty"),
    "bad JSON": (lambda p: p.write_bytes(gzip.compress(b'{"format": 2, "rows": [')), "not valid JSON"),
    "not an object": (lambda p: p.write_bytes(gzip.compress(b"[1, 2, 3]")), "holds a JSON list, not an object"),
    "missing key": (lambda p: _store(p, _drop(_payload(p), "rows")), "'rows' is a required property"),
    "wrong type": (lambda p: _store(p, {**_payload(p), "year": "2026"}), "year: '2026' is not of type 'integer'"),
    "row too short": (lambda p: _store(p, _row_change(_payload(p), lambda rows: rows[3].pop())),
                      f"rows/3: {len(FIELDS) - 1} cells where fields lists {len(FIELDS)}"),  # a 2026 file stores every field
    "cell of the wrong type": (lambda p: _store(p, _row_change(_payload(p), lambda rows: rows.__setitem__(
        1, rows[1][:4] + ["19.11"] + rows[1][5:]))), "rows/1: work is '19.11', not a finite number"),
    "checksum mismatch": (lambda p: _store(p, _row_change(_payload(p), lambda rows: rows[1].__setitem__(4, 99.0)),
                                           reseal=False), "does not match its checksum"),
    "no checksum": (lambda p: _store(p, _drop(_payload(p), CHECKSUM), reseal=False),
                    "'checksum' is a required property"),
    "older format": (lambda p: _store(p, {**_payload(p), "format": 1}), "stored format 1"),
    "infinity": (lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes()).replace(
        b"19.11", b"Infinity"))), "non-finite number Infinity"),
    "overflowing number": (lambda p: p.write_bytes(gzip.compress(gzip.decompress(p.read_bytes()).replace(
        b"19.11", b"1e400"))), "a number too large to be finite"),
    "key and name disagree": (lambda p: p.rename(p.with_name("RVU26C.json.gz")), "not the one its name says"),
}


@pytest.fixture
def data_dir(tmp_path, cms_dir) -> Path:
    folder = tmp_path / "data"
    write_release(import_pfs_csv(cms_dir / EXCERPT, partial=True), folder)
    return folder


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_file_is_named_with_its_problem(data_dir, capsys, damage):
    """Each damage used to end `serve --data` and `data list` in a traceback naming no file."""
    stored = data_dir / "pfs" / "RVU26D.json.gz"
    spoil, says = DAMAGES[damage]
    spoil(stored)
    path = data_files(data_dir / "pfs")[0]
    with pytest.raises(DataFileError) as caught:
        CodeData.load([data_dir])
    assert caught.value.path == str(path) and says in caught.value.problem
    commands = [["data", "list"]]
    if damage in ("truncated gzip", "missing key", "checksum mismatch"):  # each ask loads the rules first
        commands.append(["ask", "RVUs for 27447", "--date", "2026-10-15"])
    for command in commands:
        assert main([*command, "--data-dir", str(data_dir)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {path}: ") and says in err[0]


def test_serve_reports_a_damaged_file_in_one_line(data_dir):
    stored = data_dir / "pfs" / "RVU26D.json.gz"
    stored.write_bytes(stored.read_bytes()[:100])
    served = subprocess.run([sys.executable, "-m", "cptrules", "serve", "--port", "0", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert served.returncode == 1
    says = "damaged or truncated gzip data (Compressed file ended before the end-of-stream marker was reached)"
    assert served.stderr.strip().splitlines() == [f"error: {stored}: {says}"]


def test_a_damaged_hcpcs_file_is_named(tmp_path, capsys):
    from cptrules.embedded import default_data_dir

    folder = tmp_path / "data" / "hcpcs"
    folder.mkdir(parents=True)
    stored = folder / "HCPC2025_OCT.json.gz"
    payload = _payload(default_data_dir() / "hcpcs" / "HCPC2025_OCT.json.gz")
    payload["codes"]["J0171"] = payload["codes"]["J0171"][:3]
    _store(stored, payload)
    with pytest.raises(DataFileError, match="codes/J0171: not 10 text cells"):
        HcpcsFile.load(stored)
    assert main(["data", "list", "--data-dir", str(tmp_path / "data")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {stored}: codes/J0171: not 10 text cells"


def test_a_damaged_file_can_still_be_listed_and_removed(data_dir, capsys):
    stored = data_dir / "pfs" / "RVU26D.json.gz"
    stored.write_bytes(b"junk")
    assert [i.problem != "" for i in list_imports(data_dir)] == [True]
    assert main(["data", "remove", "RVU26D", "--data-dir", str(data_dir)]) == 0
    assert not stored.exists()


def test_the_embedded_files_pass_their_own_checks():
    from cptrules.embedded import default_data_dir

    data = CodeData.load([default_data_dir()])
    assert [r.key for r in data.releases] == ["RVU25D"] and not data.releases[0].partial
    assert [h.key for h in data.hcpcs_files] == ["HCPC2025_OCT"] and not data.hcpcs_files[0].partial


# -- an import killed while writing -------------------------------------------------------------

WRITER = """
import json, sys
from pathlib import Path
from cptrules.data.pfs import ImportedRelease, write_release
old, new, data = (Path(a) for a in sys.argv[1:4])
releases = [ImportedRelease(json.loads(p.read_text())) for p in (new, old)]
print("ready", flush=True)
for n in range(10_000):
    write_release(releases[n % 2], data, replace=True)
"""


def test_an_import_killed_mid_write_leaves_old_or_new(tmp_path, cms_dir):
    """SIGKILL at random points of the write: the data directory holds the old or the new release,
    never a partial file; temp files are invisible to the loader and the next import removes them."""
    source = cms_dir / "PPRRVU2025_Oct.csv"
    changed = tmp_path / "PPRRVU2025_Oct_changed.csv"
    changed.write_bytes(source.read_bytes().replace(b"\r\n27447,,", b"\r\n27447,,x", 1))
    imports = [import_pfs_csv(p, release="RVU25C") for p in (source, changed)]
    old, new = tmp_path / "old.json", tmp_path / "new.json"  # parsed once; the child only writes
    for path, imported in zip((old, new), imports):
        path.write_text(json.dumps(imported.payload))
    versions = {i.payload["sha256"] for i in imports}
    assert len(versions) == 2
    data = tmp_path / "data"
    write_release(imports[0], data)
    stored = data / "pfs" / "RVU25C.json.gz"
    chance = random.Random(20)
    stale_seen = 0
    for _ in range(3):  # bounded: each round starts a process and parses two whole releases
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(old), str(new), str(data)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60  # only to detect a writer that never writes
        while not any(n.endswith(".tmp") for n in os.listdir(data / "pfs")):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.001)
        time.sleep(chance.uniform(0, 0.03))  # a random point of the write (or just after it)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        files = sorted(p.name for p in (data / "pfs").iterdir())
        assert files[-1] == "RVU25C.json.gz"
        temps = files[:-1]
        assert all(n.startswith(".RVU25C.json.gz.") and n.endswith(".tmp") for n in temps)
        stale_seen += len(temps)
        loaded = CodeData.load([data])  # never picks up a temp file, and the file is whole
        assert [r.sha256 for r in loaded.releases] in ([v] for v in versions)
        assert PfsRelease.load(stored).row_count == 19090
        write_release(imports[0], data, replace=True)
        assert sorted(p.name for p in (data / "pfs").iterdir()) == ["RVU25C.json.gz"]
    assert stale_seen >= 1, "no kill landed inside a write"

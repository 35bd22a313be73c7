"""The served process under abuse, in a subprocess on loopback: invalid protobuf bytes on every
RPC, rule sets that alternate between good and broken under load (SIGHUP), and importers killed
with SIGKILL at random points. The default run does a short version of the first two; the long
ones and the importers are marked slow (sizes in the environment variables named below)."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
import pytest
from google.protobuf import descriptor as pb_descriptor, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings, strategies as st

from cptrules import checked
from cptrules.data.location import resolve_data_dir
from cptrules.embedded import default_data_dir
from cptrules.ruleset import load_ruleset
from cptrules.v1 import code_rules_service_pb2 as svc, code_rules_service_pb2_grpc

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HANG = 120  # seconds: only to tell "finishes" from "never finishes" on a loaded machine
SERVICE = svc.DESCRIPTOR.services_by_name["CodeRulesService"]
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
MiB = 1 << 20


@dataclass
class Served:
    """`cptrules serve` in a child process on a copy of the rules."""

    process: subprocess.Popen
    port: int
    rules: Path
    log: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def rss(self) -> int:
        return psutil.Process(self.process.pid).memory_info().rss

    def log_count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log.read_text(errors="replace")))


def _server_fingerprint(revision: str, today) -> str:
    """The check record the child's start and reloads look up: its data directories are the
    embedded data and the (empty) default data directory."""
    return checked.fingerprint(revision, [default_data_dir(), resolve_data_dir(None).path], today)


@pytest.fixture(scope="module")
def served(engine, cptrules_config, tmp_path_factory):
    """The child serves the embedded rules (copied) on the session's day. The session engine ran
    the full load check on exactly these rules and data on that day; the child's record of it
    is keyed by its own list of data folders (one more, empty), so that result is recorded for
    it rather than computed again (tens of seconds of CPU)."""
    folder = tmp_path_factory.mktemp("served")
    rules = folder / "rules"
    shutil.copytree(REPO / "rules", rules)
    checked.record_pass(_server_fingerprint(engine.ruleset.revision, cptrules_config.today))
    log = folder / "serve.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cptrules", "serve", "--port", "0", "--rules", str(rules),
             "--today", cptrules_config.today.isoformat(), "--grace", "2"],
            stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            line = process.stdout.readline()
            found = re.search(r"serving on [\d.]+:(\d+) ", line)
            assert found, f"no address on the first line: {line!r}; {log.read_text()}"
            yield Served(process, int(found.group(1)), rules, log)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=HANG)
            finally:
                if process.poll() is None:
                    process.kill()
                process.stdout.close()


def _health(channel: grpc.Channel) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=HANG).status


def test_the_child_serves_its_pinned_today_and_cptrules_health_says_serving(served, cptrules_config):
    probe = subprocess.run([sys.executable, "-m", "cptrules", "health", served.target],
                           capture_output=True, text=True, timeout=HANG)
    assert (probe.returncode, probe.stdout) == (0, f"{served.target}: SERVING\n")
    with grpc.insecure_channel(served.target) as channel:
        today = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel).GetRuleset(
            svc.GetRulesetRequest(), timeout=HANG).today
    assert (today.year, today.month, today.day) == cptrules_config.today.timetuple()[:3]


# -- 1. invalid protobuf bytes on every RPC --------------------------------------------------------

def _sample(field: pb_descriptor.FieldDescriptor, rng: random.Random):
    """A plausible value for one request field, so mutations start from a real request."""
    if field.type == field.TYPE_MESSAGE:
        cls = message_factory.GetMessageClass(field.message_type)
        return _seed_message(cls, rng)
    if field.type == field.TYPE_STRING:
        return rng.choice(["0556T", "99213", "G0439", "is 0556T permanent", "TX", "01112-05"])
    if field.type == field.TYPE_BOOL:
        return True
    if field.type == field.TYPE_ENUM:
        return rng.choice([v.number for v in field.enum_type.values])
    if field.cpp_type in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
        return 1.5
    return rng.choice([1, 5, 50])


def _seed_message(cls, rng: random.Random):
    message = cls()
    if cls.DESCRIPTOR.full_name == "google.type.Date":
        return cls(year=2026, month=1, day=15)
    for field in cls.DESCRIPTOR.fields:
        if field.is_repeated:
            if field.type == field.TYPE_MESSAGE:
                continue
            getattr(message, field.name).extend(_sample(field, rng) for _ in range(2))
        elif field.type == field.TYPE_MESSAGE:
            getattr(message, field.name).CopyFrom(_sample(field, rng))
        else:
            setattr(message, field.name, _sample(field, rng))
    return message


def _seeds() -> dict[str, bytes]:
    """One valid request per RPC of the service (every RPC it has, read from the descriptor) and
    for the health check, serialised."""
    rng = random.Random(10)
    seeds = {f"/{SERVICE.full_name}/{m.name}":
             _seed_message(message_factory.GetMessageClass(m.input_type), rng).SerializeToString()
             for m in SERVICE.methods}
    seeds[HEALTH_CHECK] = health_pb2.HealthCheckRequest(service=SERVICE.full_name).SerializeToString()
    return seeds


SEEDS = _seeds()
STREAMING = {f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods if m.server_streaming}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def _invalid_bytes(draw) -> tuple[str, bytes]:
    """A method and bytes that are rarely a valid request: a valid request mutated (cut short,
    bytes flipped or inserted, a field with a wrong wire type or a length past the end, groups
    nested past the parser's limit), or random bytes."""
    method = draw(st.sampled_from(sorted(SEEDS)))
    seed = SEEDS[method]
    kind = draw(st.sampled_from(["cut", "flip", "insert", "wire", "overlong", "nest", "random"]))
    at = draw(st.integers(0, len(seed)))
    if kind == "cut":
        data = seed[:at]
    elif kind == "flip":
        data = bytearray(seed or b"\0")
        data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
        data = bytes(data)
    elif kind == "insert":
        data = seed[:at] + draw(st.binary(min_size=1, max_size=16)) + seed[at:]
    elif kind == "wire":
        tag = _varint((draw(st.integers(1, 2**29 - 1) | st.integers(1, 20)) << 3) | draw(st.integers(0, 7)))
        data = seed + tag + draw(st.binary(max_size=12))
    elif kind == "overlong":
        data = seed + _varint((draw(st.integers(1, 20)) << 3) | 2) + _varint(draw(st.integers(1, 2**35)))
    elif kind == "nest":
        depth = draw(st.integers(50, 2000))
        data = seed + _varint((1 << 3) | 3) * depth
    else:
        data = draw(st.binary(max_size=512))
    return method, data


def _fuzz(target: str, examples: int) -> Counter:
    """Send `examples` invalid byte strings; count status codes per method; none UNKNOWN/INTERNAL."""
    counts: Counter = Counter()
    bad: list[tuple[str, bytes, str]] = []
    with grpc.insecure_channel(target) as channel:
        # Identity (de)serialisers: raw bytes. A server stream is read a few messages deep and
        # then cancelled: its requests are checked before anything is streamed.
        calls = {m: channel.unary_stream(m) if m in STREAMING else channel.unary_unary(m) for m in SEEDS}

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(_invalid_bytes())
        def send(pair):
            method, data = pair
            try:
                if method in STREAMING:
                    stream = calls[method](data, timeout=HANG)
                    for _, _ in zip(range(3), stream):
                        pass
                    stream.cancel()
                else:
                    calls[method](data, timeout=HANG)
                code = grpc.StatusCode.OK
            except grpc.RpcError as error:
                code = error.code()
            counts[(method.rsplit("/", 1)[1], code.name)] += 1
            if code in FORBIDDEN:
                bad.append((method, data, code.name))

        send()
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
    assert not bad, bad[:5]
    return counts


def _report(counts: Counter) -> str:
    by_status = Counter()
    for (_, status), n in counts.items():
        by_status[status] += n
    return f"{sum(counts.values())} calls, {len({m for m, _ in counts})} methods: {dict(by_status)}"


def _fuzz_with_memory(served: Served, warm: int, examples: int) -> tuple[Counter, int, int]:
    _fuzz(served.target, warm)  # caches and pools reach their working size first
    before = served.rss()
    counts = _fuzz(served.target, examples)
    after = served.rss()
    print(f"fuzz: {_report(counts)}; server RSS {before / MiB:.0f} → {after / MiB:.0f} MiB")
    return counts, before, after


def test_invalid_bytes_on_every_rpc_are_never_unknown_or_internal(served):
    counts, before, after = _fuzz_with_memory(served, warm=50, examples=300)
    methods = {m for m, _ in counts}
    assert methods == {m.rsplit("/", 1)[1] for m in SEEDS}  # every RPC was reached
    assert any(status == "INVALID_ARGUMENT" for _, status in counts)
    assert after - before < 64 * MiB
    assert served.process.poll() is None


@pytest.mark.slow
def test_invalid_bytes_many(served):
    """CPTRULES_FUZZ_BYTES (default 20000) invalid requests after 2000 to warm up; memory flat."""
    examples = int(os.environ.get("CPTRULES_FUZZ_BYTES", "20000"))
    counts, before, after = _fuzz_with_memory(served, warm=2000, examples=examples)
    assert sum(counts.values()) == examples
    assert after - before < 64 * MiB
    assert served.process.poll() is None


# -- 2. good and broken rule sets alternate under load ----------------------------------------------

VARIANT_MARK = "\n# variant B: the same rules, another revision\n"
BREAKAGES = [  # (file, text appended): each makes the ruleset refuse to load
    ("pctc.yaml", "  - id: [unclosed\n"),                        # YAML syntax
    ("answers/what_is.j2", "{{ no_such_fact_anywhere }}\n"),      # a template naming no fact
    ("pctc.yaml", "  - id: pctc-0\n    when: pctc_indicator == 1\n    set: {pctc_meaning: x}\n"),
]                                                                  # duplicate id, CEL type error


class Load:
    """Client threads calling in a loop (each waits for its answer: bounded concurrency),
    counting failures and the revisions their answers name."""

    def __init__(self, target: str, threads: int = 3) -> None:
        self.target = target
        self.calls = 0
        self.failures: list[str] = []
        self.revisions: Counter = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
            requests = [lambda: stub.GetCode(svc.GetCodeRequest(code="0556T"), timeout=HANG).provenance,
                        lambda: stub.AnswerQuestion(svc.AnswerQuestionRequest(question="is 99213 permanent"),
                                                    timeout=HANG).provenance,
                        lambda: stub.GetFaq(svc.GetFaqRequest(code="G0439"), timeout=HANG).provenance]
            turn = index
            while not self._stop.is_set():
                try:
                    revision = requests[turn % len(requests)]().ruleset_version
                    with self._lock:
                        self.calls += 1
                        self.revisions[revision] += 1
                except grpc.RpcError as error:
                    with self._lock:
                        self.calls += 1
                        self.failures.append(f"{error.code().name}: {error.details()}")
                turn += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HANG)


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + HANG
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def _alternate(served: Served, good_reloads: int, record_variant: bool, today) -> dict:
    """Broken and good rule sets in turn, `good_reloads` of each, SIGHUP after each change, under
    load. The good ones are A (the rules) and B (A and a comment: another revision) in turn,
    starting with the one not served now."""
    original = {name: (served.rules / name).read_bytes() for name in ("ruleset.yaml", *{b[0] for b in BREAKAGES})}
    original["ruleset.yaml"] = original["ruleset.yaml"].removesuffix(VARIANT_MARK.encode())
    variant = original["ruleset.yaml"] + VARIANT_MARK.encode()

    def write(name: str, data: bytes) -> None:
        (served.rules / name).write_bytes(data)

    with grpc.insecure_channel(served.target) as channel:
        stub = code_rules_service_pb2_grpc.CodeRulesServiceStub(channel)
        revision = lambda: stub.GetRuleset(svc.GetRulesetRequest(), timeout=HANG).revision  # noqa: E731
        current = revision()
        revisions = {}
        for which, data in (("a", original["ruleset.yaml"]), ("b", variant)):
            write("ruleset.yaml", data)
            revisions[which] = load_ruleset(served.rules).revision
        a, b = revisions["a"], revisions["b"]
        assert a != b and current in (a, b)
        write("ruleset.yaml", variant if current == b else original["ruleset.yaml"])
        if record_variant:  # B differs from A by a comment: A's check result is B's
            checked.record_pass(_server_fingerprint(b, today))
        seen = [current]
        refused = served.log_count(r"reload (refused|failed)")
        with Load(served.target) as load:
            for step in range(2 * good_reloads):
                if step % 2 == 0:  # broken: the old snapshot keeps serving
                    name, text = BREAKAGES[(step // 2) % len(BREAKAGES)]
                    write(name, original[name] + text.encode())
                    served.process.send_signal(signal.SIGHUP)
                    _wait(lambda: served.log_count(r"reload (refused|failed)") > refused, "a refused reload")
                    refused += 1
                    write(name, original[name])
                    assert revision() == seen[-1]
                else:  # good: A and B in turn
                    want = b if seen[-1] == a else a
                    write("ruleset.yaml", variant if want == b else original["ruleset.yaml"])
                    served.process.send_signal(signal.SIGHUP)
                    _wait(lambda: revision() == want, f"revision {want} served")
                    seen.append(want)
    print(f"reload under load: {good_reloads} good and {good_reloads} broken reloads; {load.calls} calls, "
          f"{len(load.failures)} failed; answers by revision {dict(load.revisions)}")
    assert not load.failures, load.failures[:5]
    assert load.calls > 0 and set(load.revisions) <= {a, b}
    assert served.process.poll() is None
    return {"a": a, "b": b, "seen": seen}


def test_broken_and_good_rules_alternate_under_load_without_a_failed_call(served, cptrules_config):
    result = _alternate(served, good_reloads=1, record_variant=True, today=cptrules_config.today)
    assert result["seen"] == [result["a"], result["b"]]


@pytest.mark.slow
def test_fifty_alternations_under_load(served, cptrules_config):
    """50 reloads: 25 broken, 25 good (the first of B runs the full check)."""
    result = _alternate(served, good_reloads=25, record_variant=False, today=cptrules_config.today)
    assert len(result["seen"]) == 26


# -- 3. importers killed at random points ------------------------------------------------------------

@dataclass(frozen=True)
class ImportCase:
    command: str
    source: str        # file under the shared CMS folder
    key_option: list[str]
    folder: str        # pfs or hcpcs


PFS = ImportCase("import-pfs", "PPRRVU2025_Oct.csv", ["--release", "RVU25C"], "pfs")
HCPCS = ImportCase("import-hcpcs", "HCPC2025_OCT_ANWEB.from-xlsx.csv", ["--key", "HCPC2025_JUL"], "hcpcs")


def _excerpt(source: Path, target: Path, rows: int) -> Path:
    lines = source.read_text(encoding="latin-1").splitlines(keepends=True)
    target.write_text("".join(lines[:rows]), encoding="latin-1")
    return target


def _command(case: ImportCase, source: Path, data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cptrules", case.command, str(source), "--data-dir", str(data_dir),
            *case.key_option, *extra]


def _import(case: ImportCase, source: Path, data_dir: Path, *extra: str) -> float:
    """Run an import to its end; the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(_command(case, source, data_dir, *extra), capture_output=True, text=True,
                          timeout=HANG)
    assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def _state(data_dir: Path, case: ImportCase) -> tuple[str, ...]:
    """The source sha256 of every import the data directory holds, each read whole and verified
    as a server would; a partial or damaged file fails here."""
    from cptrules.data.store import CodeData, list_imports

    items = list_imports(data_dir)
    assert all(not item.problem for item in items), [(i.path, i.problem) for i in items]
    CodeData.load([default_data_dir(), data_dir])  # what serve would load
    return tuple(item.sha256 for item in items if item.kind == case.folder)


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")] if folder.is_dir() else []


def _kill(case: ImportCase, source: Path, data_dir: Path, rng: random.Random, during_write: bool,
          duration: float) -> str:
    """Start a replacing import and SIGKILL it: a random time into its run, or a random moment
    (0-20 ms) after its temporary file appears, i.e. while it writes. 'killed' or 'finished'."""
    folder = data_dir / case.folder
    before = set(_temp_files(folder))
    process = subprocess.Popen(_command(case, source, data_dir, "--replace"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if during_write:
            deadline = time.monotonic() + HANG
            while process.poll() is None and not set(_temp_files(folder)) - before:
                assert time.monotonic() < deadline, "the import never started writing"
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.02))
        else:
            time.sleep(rng.uniform(0.1, 2.5) * duration)
        process.send_signal(signal.SIGKILL)
    finally:
        status = process.wait(HANG)
    return "killed" if status == -signal.SIGKILL else "finished"


def _kill_at_random_points(case: ImportCase, cms_dir: Path, tmp_path: Path, kills: int) -> Counter:
    """Old data (an excerpt), then `kills` replacing imports of the whole file killed half at
    random times and half while writing; after each, the folder holds the old or the new import
    (told apart by the sha256 of the file imported), whole, and loads. A last import to its end
    removes the killed writers' temporary files."""
    rng = random.Random(case.command)
    whole = cms_dir / case.source
    new = hashlib.sha256(whole.read_bytes()).hexdigest()
    data_dir = tmp_path / "data"
    old_source = _excerpt(whole, tmp_path / f"old-{case.source}", 400)
    duration = _import(case, old_source, data_dir, "--partial")
    (old,) = _state(data_dir, case)
    outcomes: Counter = Counter()
    for round_ in range(kills):
        how = _kill(case, whole, data_dir, rng, during_write=round_ % 2 == 0, duration=duration)
        (found,) = _state(data_dir, case)
        assert found in (old, new)  # never a third content
        outcomes[(how, "old" if found == old else "new")] += 1
        if found == new:  # the import renamed its file before the kill: start again from old
            _import(case, old_source, data_dir, "--partial", "--replace")
    leftovers = len(_temp_files(data_dir / case.folder))
    _import(case, old_source, data_dir, "--partial", "--replace")
    assert _state(data_dir, case) == (old,)
    assert not _temp_files(data_dir / case.folder)
    print(f"{case.command} killed at random points: {dict(outcomes)}; {leftovers} temporary files left "
          f"by killed writers, removed by the next import")
    return outcomes


@pytest.mark.slow
@pytest.mark.parametrize("case", [PFS, HCPCS], ids=["pfs", "hcpcs"])
def test_importers_killed_many_times_leave_old_or_new_data(case, cms_dir, tmp_path):
    """The command-line importers end to end (the default run kills the writer itself, in
    tests/unit/test_data_files.py); CPTRULES_IMPORT_KILLS kills per importer (20)."""
    kills = int(os.environ.get("CPTRULES_IMPORT_KILLS", "20"))
    outcomes = _kill_at_random_points(case, cms_dir, tmp_path, kills)
    assert sum(outcomes.values()) == kills and any(k == "killed" for k, _ in outcomes)

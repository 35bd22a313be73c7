"""The compiled, checked snapshot on disk, so that a restart maps it in with one read instead of
parsing YAML, compiling rules and templates and classifying every code again.

One file per snapshot key (checked.Inputs.key: rules, data and code, by content) in the cache
directory, written aside and renamed in. The file is a magic line, the SHA-256 of the payload and
the payload: a pickle of plain data in which CEL programs are stored as their serialised checked
expressions and answer templates as their compiled (marshalled) Python code. A file that is
missing, cut short, damaged, of another format or of another key is ignored (the snapshot is
rebuilt and written again), never trusted: the digest is checked before anything is unpickled,
and the unpickler only builds the project's own classes and a few standard value types.

The cache directory is trusted as the data directory is: only the service's user may write it.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import io
import logging
import marshal
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from cel_expr_python import cel

from . import checked
from .answers.templates import ENVIRONMENT, AnswerTemplate
from .ruleset.conditions import _FUNCTIONS, Condition, Where

log = logging.getLogger(__name__)

MAGIC = b"cptrules snapshot 1\n"
_DIGEST = hashlib.sha256().digest_size
KEEP = 4  # snapshot files kept per cache directory (the most recently used); older ones are removed

# CEL programs are deserialised from their checked form; the runtime needs only the functions.
_RUNTIME = cel.NewEnv(variables={}, functions=_FUNCTIONS)


def folder() -> Path:
    """Where snapshot files are kept."""
    return checked.cache_dir().parent / "snapshots"


def path_for(key: str) -> Path:
    return folder() / f"{key}.snapshot"


# -- what cannot be pickled as it is -----------------------------------------------------------

def _condition(text: str, checked_expr: bytes, reads: tuple[str, ...], where: Where) -> Condition:
    return Condition(text, _RUNTIME.deserialize(checked_expr), reads, where)


def _template(code: bytes, path: str, base_line: int, source: str) -> AnswerTemplate:
    template = ENVIRONMENT.template_class.from_code(ENVIRONMENT, marshal.loads(code),
                                                    ENVIRONMENT.make_globals(None))
    return AnswerTemplate(template, path, base_line, source)


def _by_constructor(cls: type) -> tuple[str, ...] | None:
    """The fields of a frozen, slotted dataclass that its constructor rebuilds whole. Such
    objects are stored as a constructor call: unpickling them through dataclasses' generic
    __setstate__ costs a Python call per field (tens of thousands of ZIP codes and rows)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        return None
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields) or hasattr(cls, "__post_init__"):
        return None
    return tuple(f.name for f in fields)


class _Pickler(pickle.Pickler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[type, tuple[str, ...] | None] = {}

    def reducer_override(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is Condition:
            return _condition, (obj.text, obj.program.serialize(), obj.reads, obj.where)
        if cls is AnswerTemplate:
            code = ENVIRONMENT.compile(obj.source, name=obj.path, filename=obj.path)
            return _template, (marshal.dumps(code), obj.path, obj.base_line, obj.source)
        if cls not in self._plans:
            self._plans[cls] = _by_constructor(cls)
        names = self._plans[cls]
        if names is not None:
            return cls, tuple(getattr(obj, name) for name in names)
        return NotImplemented


_ALLOWED = {
    ("datetime", "date"), ("datetime", "datetime"), ("datetime", "timedelta"), ("datetime", "timezone"),
    ("re", "_compile"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "slice"),
    ("collections", "OrderedDict"), ("copyreg", "_reconstructor"), ("builtins", "object"),
    (__name__, "_condition"), (__name__, "_template"),
}


class _Unpickler(pickle.Unpickler):
    """Builds only the project's classes (no functions but the two restorers above) and a few
    standard value types: a snapshot file is data, never code to run."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module.startswith("cptrules.") and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a snapshot file")


# -- the file -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Stored:
    """What a snapshot is rebuilt from: the compiled ruleset, the data, the codes in order and
    the codes of each category."""

    ruleset: Any
    data: Any
    codes: tuple[str, ...]
    by_category: dict[str, tuple[str, ...]]


def write(key: str, stored: Stored) -> Path | None:
    """Persist a snapshot atomically; a cache directory that cannot be written is no error."""
    # Per-process caches are not part of a snapshot: they are rebuilt by use.
    stored = dataclasses.replace(stored, ruleset=dataclasses.replace(stored.ruleset, memo={}, date_plans={}))
    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((key, stored))
    except Exception as error:  # noqa: BLE001 - a snapshot that cannot be stored is only slower next time
        log.warning("snapshot not persisted: %s", error)
        return None
    payload = buffer.getvalue()
    target = path_for(key)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".snapshot.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(target.parent, keep=target)
    except OSError as error:
        log.info("snapshot not persisted (%s)", error)
        return None
    return target


def read(key: str) -> Stored | None:
    """The snapshot stored under `key`, or None when there is none or it cannot be trusted."""
    path = path_for(key)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head = len(MAGIC) + _DIGEST
    if raw[:len(MAGIC)] != MAGIC or len(raw) <= head:
        log.warning("ignoring snapshot file %s: not a snapshot of this format", path)
        return None
    payload = memoryview(raw)[head:]
    if hashlib.sha256(payload).digest() != raw[len(MAGIC):head]:
        log.warning("ignoring snapshot file %s: its content does not match its digest", path)
        return None
    enabled = gc.isenabled()
    gc.disable()  # hundreds of thousands of small objects: collecting while building them is waste
    try:
        found_key, stored = _Unpickler(io.BytesIO(payload)).load()
    except Exception as error:  # noqa: BLE001 - any failure means: rebuild, never trust
        log.warning("ignoring snapshot file %s: %s", path, error)
        return None
    finally:
        if enabled:
            gc.enable()
    if found_key != key or not isinstance(stored, Stored):
        log.warning("ignoring snapshot file %s: it belongs to another key", path)
        return None
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return stored


def _prune(where: Path, keep: Path) -> None:
    """Remove all but the KEEP most recently written or read snapshot files."""
    files = sorted((p for p in where.glob("*.snapshot") if p != keep),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP - 1:]:
        old.unlink(missing_ok=True)

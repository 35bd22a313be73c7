"""A record of the rules-and-data pairs that passed the full load check, so that a restart on
the same rules, data, code and day need not redo seconds of checking.

The record is one small file per fingerprint in the cache directory (`CPTRULES_CACHE_DIR`, else
the platform's user cache directory). The fingerprint covers every byte the check depends on:
the ruleset revision, every file of the data directories, the code (the package's own source,
the Python version and the libraries that compile rules and templates), and the day (the check
runs the rules on today's date too). A missing, unreadable or unwritable record only means the
full check runs; it never lets a changed input skip it.

`Inputs.key` (the same without the day) names the persisted snapshot (see persisted.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Where check records are kept."""
    return Path(os.environ.get("CPTRULES_CACHE_DIR") or platformdirs.user_cache_dir("cptrules")) / "checked"


def _tree_digest(digest: "hashlib._Hash", root: Path, pattern: str) -> bool:
    """Add every file under root to the digest; False when there is none."""
    found = False
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        found = True
    return found


# Libraries whose versions change what a compiled snapshot holds (code objects, checked CEL).
_LIBRARIES = ("cel-expr-python", "jinja2", "ruamel.yaml", "protobuf", "jsonschema", "rapidfuzz")


@functools.cache
def code_digest() -> str:
    """The code that builds and checks a snapshot: this package's source as it was when the
    process started, the Python version and the versions of the libraries it compiles with."""
    digest = hashlib.sha256(f"{sys.version}\0{sys.implementation.cache_tag}\0".encode())
    for name in _LIBRARIES:
        try:
            digest.update(f"{name}={metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=none\0".encode())
    _tree_digest(digest, _PACKAGE, "*.py")
    return digest.hexdigest()


def data_digest(data_dirs: list[Path]) -> str:
    """Every file of the data directories, by content and order, not by where the folders are;
    a folder with no files (or none yet) holds nothing, so it changes nothing."""
    digest = hashlib.sha256()
    for folder in data_dirs:
        if folder.is_dir():
            part = hashlib.sha256()
            if _tree_digest(part, folder, "*"):
                digest.update(b"\1" + part.digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class Inputs:
    """Everything a snapshot is built from, by content: rules, data and code."""

    revision: str
    data: str
    code: str

    @classmethod
    def of(cls, revision: str, data_dirs: list[Path]) -> Inputs:
        return cls(revision, data_digest(data_dirs), code_digest())

    @property
    def key(self) -> str:
        """The name of the compiled snapshot built from these inputs."""
        return hashlib.sha256(f"{self.revision}\0{self.data}\0{self.code}".encode()).hexdigest()

    def check_key(self, today: dt.date) -> str:
        """The name of a full check of these inputs on one day."""
        return hashlib.sha256(f"{self.key}\0{today.isoformat()}".encode()).hexdigest()


def fingerprint(revision: str, data_dirs: list[Path], today: dt.date) -> str:
    """The identity of one check: rules, data, code and day."""
    return Inputs.of(revision, data_dirs).check_key(today)


def passed_before(print_: str) -> bool:
    """True when a check with this fingerprint passed before."""
    try:
        return (cache_dir() / print_).read_text(encoding="ascii").strip() == print_
    except (OSError, UnicodeDecodeError):
        return False


def record_pass(print_: str) -> None:
    """Remember that a check passed; a cache directory that cannot be written is no error."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".checked.", dir=folder)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(print_ + "\n")
        os.replace(tmp, folder / print_)
    except OSError:
        pass

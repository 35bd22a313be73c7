"""A record of the rules-and-data pairs that passed the full load check, so that a restart on
the same rules, data, code and day need not redo seconds of checking.

The record is one small file per fingerprint in the cache directory (`CPTRULES_CACHE_DIR`, else
the platform's user cache directory). The fingerprint covers every byte the check depends on:
the ruleset revision, every file of the data directories, the package's own source, and the
day (the check runs the rules on today's date too). A missing, unreadable or unwritable record
only means the full check runs; it never lets a changed input skip it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Where check records are kept."""
    return Path(os.environ.get("CPTRULES_CACHE_DIR") or platformdirs.user_cache_dir("cptrules")) / "checked"


def _tree_digest(digest: "hashlib._Hash", root: Path, pattern: str) -> None:
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


def fingerprint(revision: str, data_dirs: list[Path], today: dt.date) -> str:
    """The identity of one check: rules, data, code and day."""
    digest = hashlib.sha256(f"{revision}\0{today.isoformat()}\0".encode())
    _tree_digest(digest, _PACKAGE, "*.py")
    for folder in data_dirs:  # by content and order, not by where the folders are
        digest.update(b"\1")
        if folder.is_dir():
            _tree_digest(digest, folder, "*")
    return digest.hexdigest()


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

"""Stored data files: written aside and swapped in with one atomic rename, sealed with a
checksum of their content, and checked whole when they are read back.

A file that was cut short, edited by hand or damaged on disk is reported with its path
and what is wrong, never loaded in part. Temporary files carry the writer's process id,
so a later import can tell a stale one (its writer was killed) from one being written.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import tempfile
import zlib
from pathlib import Path
from typing import Any

from ..errors import DataFileError

CHECKSUM = "checksum"
SUFFIX = ".json.gz"
# ".RVU26D.json.gz.<pid>.<random>.tmp": hidden, and never ending in .json.gz, so no loader reads it.
_TEMP = re.compile(r"^\.(?P<target>.+\.json\.gz)\.(?P<pid>\d+)\.[^.]+\.tmp$")
_SHOWN = 160  # characters of a validation message to show; values can be whole tables


def canonical(payload: dict[str, Any]) -> bytes:
    """The payload as deterministic JSON bytes (sorted keys, no spaces)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def content_checksum(payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything but the checksum itself."""
    return hashlib.sha256(canonical({k: v for k, v in payload.items() if k != CHECKSUM})).hexdigest()


def is_data_file(path: Path) -> bool:
    """A stored data file a loader may read: ours by name, never a hidden or temporary file."""
    return path.name.endswith(SUFFIX) and not path.name.startswith(".") and path.is_file()


def data_files(folder: Path) -> list[Path]:
    """The data files in one folder (pfs/ or hcpcs/), sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_data_file(p))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temp_files(folder: Path) -> list[Path]:
    """Remove temporary files left by writers that no longer run (e.g. killed mid-write)."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        found = _TEMP.match(path.name)
        if found and not _alive(int(found.group("pid"))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_json_gz(target: Path, payload: dict[str, Any]) -> None:
    """Write gzipped JSON deterministically (no timestamp), sealed with its content checksum,
    and swap it in atomically; stale temporary files from killed writers are removed first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temp_files(target.parent)
    sealed = {**{k: v for k, v in payload.items() if k != CHECKSUM}, CHECKSUM: content_checksum(payload)}
    raw = canonical(sealed)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
                gz.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _NonFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NonFinite(name)


def read_json_gz(path: Path) -> dict[str, Any]:
    """Read a stored file's JSON object; DataFileError naming the file when it is not one."""
    try:
        if path.stat().st_size == 0:
            raise DataFileError(str(path), "is empty (an import that never finished?)")
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise DataFileError(str(path), "no such file") from None
    except gzip.BadGzipFile as exc:
        raise DataFileError(str(path), f"not a gzip file ({exc})") from None
    except (EOFError, zlib.error) as exc:
        raise DataFileError(str(path), f"damaged or truncated gzip data ({exc})") from None
    except OSError as exc:
        raise DataFileError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    try:
        payload = json.loads(raw, parse_constant=_no_constant)
    except _NonFinite as exc:
        raise DataFileError(str(path), f"holds the non-finite number {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataFileError(str(path), f"not UTF-8 JSON (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(str(path), f"not valid JSON (line {exc.lineno} column {exc.colno}: "
                                       f"{exc.msg})") from None
    if not isinstance(payload, dict):
        raise DataFileError(str(path), f"holds a JSON {type(payload).__name__}, not an object")
    return payload


_VALIDATORS: dict[int, Any] = {}


def read_verified(path: Path, schema: dict[str, Any], fmt: int) -> dict[str, Any]:
    """Read a stored file and check its format version, its schema and its checksum."""
    # Imported here: a start from a persisted snapshot reads no data file and never needs it.
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    payload = read_json_gz(path)
    found = payload.get("format")
    if found != fmt:
        raise DataFileError(str(path), f"stored format {found!r}, where this version reads format {fmt}: "
                                       "import the CMS file again")
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = Draft202012Validator(schema)
    error = best_match(validator.iter_errors(payload))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        message = error.message if len(error.message) <= _SHOWN else error.message[:_SHOWN] + "…"
        raise DataFileError(str(path), f"{where}: {message}")
    try:
        checksum = content_checksum(payload)
    except ValueError:  # a number too large for a float (1e400) reads as infinity
        raise DataFileError(str(path), "holds a number too large to be finite") from None
    if payload[CHECKSUM] != checksum:
        raise DataFileError(str(path), "its content does not match its checksum: the file was changed "
                                       "or damaged after import; import the CMS file again")
    return payload

"""Writing data files safely: aside first, then one atomic rename."""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_gz(target: Path, payload: dict[str, Any]) -> None:
    """Write gzipped JSON deterministically (no timestamp) and swap it in atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle, gzip.GzipFile(
                filename="", mode="wb", fileobj=handle, mtime=0) as gz:
            gz.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_gz(path: Path) -> dict[str, Any]:
    """Read a file written by write_json_gz."""
    with gzip.open(path, "rb") as handle:
        return json.loads(handle.read())

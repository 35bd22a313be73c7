"""Writing an export folder so that a rerun on the same inputs touches nothing: every file is
compared with what the previous run wrote (its manifest) and written only when its bytes differ;
files the previous run wrote and this one does not are removed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST = "manifest.json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ExportFolder:
    """The output folder: what the previous run recorded, what this run writes."""

    def __init__(self, root: Path, previous: dict[str, Any] | None) -> None:
        self.root = root
        self.previous_files: dict[str, str] = dict((previous or {}).get("files", {}))
        self.files: dict[str, str] = {}
        self.written: list[str] = []

    def _unchanged(self, rel: str, digest: str, size: int) -> bool:
        path = self.root / rel
        if rel == MANIFEST:  # not listed in itself: compare with the file on disk
            return path.is_file() and path.stat().st_size == size and sha256(path.read_bytes()) == digest
        return (self.previous_files.get(rel) == digest and path.is_file()
                and path.stat().st_size == size)

    def write(self, rel: str, data: bytes) -> bool:
        """Write one file unless the previous run wrote the same bytes; True when written."""
        digest = sha256(data)
        self.files[rel] = digest
        if self._unchanged(rel, digest, len(data)):
            return False
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".partial")
        temp.write_bytes(data)
        os.replace(temp, path)
        self.written.append(rel)
        return True

    def same_as_before(self, rel: str, data: bytes) -> bool:
        """The previous run wrote exactly these bytes to rel (and they are still there)."""
        return self._unchanged(rel, sha256(data), len(data))

    def write_text(self, rel: str, text: str) -> bool:
        return self.write(rel, text.encode("utf-8"))

    def keep(self, rel: str) -> bool:
        """Carry a file of the previous run over unchanged (e.g. the last changes page)."""
        digest = self.previous_files.get(rel)
        if digest is None or not (self.root / rel).is_file():
            return False
        self.files[rel] = digest
        return True

    def stream(self, rel: str, compress: bool = False) -> StreamedFile:
        """A file written piece by piece (memory stays flat), swapped in only when it differs."""
        return StreamedFile(self, rel, compress)

    def remove_stale(self) -> list[str]:
        """Delete what the previous run wrote and this run did not."""
        gone = []
        for rel in sorted(set(self.previous_files) - set(self.files)):
            path = self.root / rel
            if path.is_file():
                path.unlink()
                gone.append(rel)
        return gone


class StreamedFile:
    """A file built in pieces into a temporary file; gzip output has no name and no time in
    its header, so the same content gives the same bytes."""

    def __init__(self, folder: ExportFolder, rel: str, compress: bool) -> None:
        self.folder, self.rel = folder, rel
        self.path = folder.root / rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.temp = self.path.with_name(self.path.name + ".partial")
        self._raw: BinaryIO = open(self.temp, "wb")  # noqa: SIM115 - closed in close()
        self._out: BinaryIO = (gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)  # type: ignore[assignment]
                               if compress else self._raw)

    def write(self, data: bytes) -> None:
        self._out.write(data)

    def close(self) -> bool:
        """Finish; True when the file changed and was swapped in."""
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        digest = hashlib.sha256()
        with open(self.temp, "rb") as done:
            for block in iter(lambda: done.read(1 << 20), b""):
                digest.update(block)
        hexdigest = digest.hexdigest()
        self.folder.files[self.rel] = hexdigest
        if self.folder._unchanged(self.rel, hexdigest, self.temp.stat().st_size):
            self.temp.unlink()
            return False
        os.replace(self.temp, self.path)
        self.folder.written.append(self.rel)
        return True


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The previous run's manifest, or None when there is none or it cannot be read."""
    path = root / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The previous run's answer records, one per code in code order, read lazily."""
    if not path.is_file():
        return
    with gzip.open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)

"""Where imported data lives: one directory for every command.

`--data-dir DIR`, else the environment variable CPTRULES_DATA_DIR, else the user's data
directory as the platform defines it (XDG on Linux: $XDG_DATA_HOME/cptrules, by default
~/.local/share/cptrules). The importers write there and serve, ask, faq, explain, check and
diff read it, so an import is served without further flags. A directory that was named
explicitly must exist and look like a data directory; the default one not existing yet
just means nothing has been imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_path

from ..errors import DataFileError
from .files import SUFFIX

ENV_VAR = "CPTRULES_DATA_DIR"
KINDS = ("pfs", "hcpcs")
_CONTENTS = ("pfs", "hcpcs", "catalogue.yaml")


def platform_data_dir() -> Path:
    """The user's data directory for cptrules on this platform."""
    return user_data_path("cptrules", appauthor=False)


@dataclass(frozen=True)
class DataDir:
    """A resolved data directory and where the setting came from."""

    path: Path
    source: str  # "--data-dir", "CPTRULES_DATA_DIR" or "default"

    @property
    def explicit(self) -> bool:
        return self.source != "default"

    def for_reading(self) -> Path:
        """The directory, checked before anything is loaded from it; DataFileError when it
        is missing (named explicitly), a file, or not a data directory."""
        path = self.path
        named = f"{path} (from {self.source})" if self.explicit else str(path)
        if not path.exists():
            if self.explicit:
                raise DataFileError(named, "no such data directory")
            return path
        if not path.is_dir():
            raise DataFileError(named, "is a file, not a data directory")
        for kind in KINDS:
            if (path / kind).exists() and not (path / kind).is_dir():
                raise DataFileError(str(path / kind), "is a file where a folder of imported data belongs")
        stray = sorted(p.name for p in path.iterdir() if p.name.endswith(SUFFIX))
        if stray:
            raise DataFileError(named, f"holds data files ({stray[0]}) directly: this looks like a "
                                       f"{'/'.join(KINDS)} subfolder; give the folder above it")
        if self.explicit and any(path.iterdir()) and not any((path / name).exists() for name in _CONTENTS):
            # An empty folder just holds no imports yet; other content means the wrong folder.
            raise DataFileError(named, "holds no imported data (no pfs/, hcpcs/ or catalogue.yaml): "
                                       "give the folder the importers wrote to")
        return path

    def for_writing(self) -> Path:
        """The directory, created if needed; DataFileError when a file is in the way."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise DataFileError(str(path), "is a file, not a data directory")
        stray = sorted(p.name for p in path.iterdir() if p.name.endswith(SUFFIX)) if path.is_dir() else []
        if stray:
            raise DataFileError(str(path), f"holds data files ({stray[0]}) directly: this looks like a "
                                           f"{'/'.join(KINDS)} subfolder; give the folder above it")
        path.mkdir(parents=True, exist_ok=True)
        return path


def resolve_data_dir(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> DataDir:
    """The data directory: the flag, else the environment variable, else the platform default."""
    if explicit is not None:
        return DataDir(Path(explicit).expanduser(), "--data-dir")
    env = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if env:
        return DataDir(Path(env).expanduser(), ENV_VAR)
    return DataDir(platform_data_dir(), "default")

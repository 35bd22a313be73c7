"""Fixtures: one engine on the embedded defaults, one real server, a stub and the CMS files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest

from cptrules.engine import Engine
from cptrules.reference import shared_dir
from cptrules.testing import RunningServer, ServerConfig

REPO = Path(__file__).resolve().parents[1]


TODAY = dt.date(2026, 11, 27)


@pytest.fixture(scope="session", autouse=True)
def no_user_data_dir(tmp_path_factory):
    """Commands read the user's data directory by default: tests never see a developer's imports,
    nor a developer's record of checks passed (one record directory for the whole session)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        patch.delenv("CPTRULES_DATA_DIR", raising=False)
        patch.setenv("CPTRULES_CACHE_DIR", str(tmp_path_factory.mktemp("cptrules-cache")))
        yield


@pytest.fixture(scope="session")
def cptrules_config() -> ServerConfig:
    """The session server of the cptrules pytest plugin: embedded rules and data, a fixed day."""
    return ServerConfig(today=TODAY)


@pytest.fixture(scope="session")
def engine(cptrules_engine: Engine) -> Engine:
    """The engine on the embedded rules and data, with the full data check, on a fixed day."""
    return cptrules_engine


@pytest.fixture(scope="session")
def server_port(cptrules_server: RunningServer) -> int:
    """A real server on a free loopback port, for the whole session."""
    return cptrules_server.port


@pytest.fixture(scope="session")
def channel(cptrules_channel: grpc.Channel) -> grpc.Channel:
    """A channel to the session's server."""
    return cptrules_channel


@pytest.fixture(scope="session")
def stub(cptrules_stub):
    """CodeRulesService stub on the session's channel (the plugin's)."""
    return cptrules_stub


@pytest.fixture(scope="session")
def cms_dir() -> Path:
    """The real CMS files beside the checkout (present in CI)."""
    shared = shared_dir()
    if shared is None:
        pytest.skip("the shared CMS files are not beside this checkout")
    return shared / "data" / "cms"


@pytest.fixture(scope="session")
def rules_dir() -> Path:
    """The rules folder as analysts edit it."""
    return REPO / "rules"


@pytest.fixture
def rules_copy(tmp_path: Path, rules_dir: Path) -> Path:
    """A writable copy of the default rules, to break on purpose."""
    import shutil

    target = tmp_path / "rules"
    shutil.copytree(rules_dir, target)
    return target


"""A pytest plugin for teams that test against cptrules: a real server on a free loopback port
with the rules, data and "today" they choose, and a channel to it (what our own tests use).

Installed with the package and registered as the `cptrules` pytest11 entry point. Choose the
server with command-line options or ini keys (`--cptrules-rules DIR` / `cptrules_rules`,
`--cptrules-data-dir DIR` / `cptrules_data_dir`, `--cptrules-today YYYY-MM-DD` /
`cptrules_today`), or override the `cptrules_config` fixture. Fixtures: `cptrules_config`,
`cptrules_engine`, `cptrules_server` (a RunningServer), `cptrules_channel`, `cptrules_stub`
(all session-scoped: a server start costs seconds) and `cptrules_server_factory` for tests that
need a server of their own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import grpc

    from .engine import Engine

READY_TIMEOUT = 30.0  # seconds for a channel to connect: only to report a server that never answers


@dataclass(frozen=True)
class ServerConfig:
    """What a test server runs: a rules directory (None: the embedded rules), imported-data
    directories read after the embedded data, a pinned today (None: the UTC date), and whether
    the full load check runs (as `serve` does)."""

    rules_dir: Path | None = None
    data_dirs: tuple[Path, ...] = ()
    today: dt.date | None = None
    check_data: bool = True

    def clock(self) -> Callable[[], dt.date]:
        from .engine import utc_today

        day = self.today
        return utc_today if day is None else (lambda: day)

    def load(self) -> Engine:
        from .engine import Engine

        return Engine.load(self.rules_dir, list(self.data_dirs), check_data=self.check_data,
                           clock=self.clock())


@dataclass(frozen=True)
class RunningServer:
    """A started server: its loopback address and the engine behind it."""

    host: str
    port: int
    engine: Engine

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def channel(self) -> grpc.Channel:
        """A new channel to the server, connected; the caller closes it."""
        import grpc

        channel = grpc.insecure_channel(self.address)
        grpc.channel_ready_future(channel).result(timeout=READY_TIMEOUT)
        return channel


@contextlib.contextmanager
def serve_engine(engine: Engine) -> Iterator[RunningServer]:
    """Serve an engine already loaded (cheap: several servers can share one engine)."""
    from .server.testing import running_server

    with running_server(engine) as (host, port):
        yield RunningServer(host, port, engine)


@contextlib.contextmanager
def start_server(config: ServerConfig = ServerConfig()) -> Iterator[RunningServer]:
    """Load the engine `config` describes and serve it on a free loopback port."""
    with serve_engine(config.load()) as server:
        yield server


def _today(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise pytest.UsageError(f"cptrules today {text!r} is not a date like 2026-01-15") from None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cptrules", "a cptrules server for integration tests")
    for name, helptext in (("rules", "rules directory (default: the embedded rules)"),
                           ("data-dir", "directory of imported CMS data, read after the embedded data"),
                           ("today", "pin the server's today, YYYY-MM-DD (default: the UTC date)")):
        key = "cptrules_" + name.replace("-", "_")
        group.addoption(f"--cptrules-{name}", dest=key, default=None, help=helptext)
        parser.addini(key, helptext, default=None)


def _option(config: pytest.Config, key: str) -> str | None:
    return config.getoption(key) or config.getini(key) or None


@pytest.fixture(scope="session")
def cptrules_config(pytestconfig: pytest.Config) -> ServerConfig:
    """The server the session fixtures start; override this fixture to choose in code."""
    rules, data = _option(pytestconfig, "cptrules_rules"), _option(pytestconfig, "cptrules_data_dir")
    return ServerConfig(Path(rules) if rules else None, (Path(data),) if data else (),
                        _today(_option(pytestconfig, "cptrules_today")))


@pytest.fixture(scope="session")
def cptrules_engine(cptrules_config: ServerConfig) -> Engine:
    """The engine of the session's server, for in-process calls beside the gRPC ones."""
    return cptrules_config.load()


@pytest.fixture(scope="session")
def cptrules_server(cptrules_engine: Engine) -> Iterator[RunningServer]:
    """A real gRPC server on a free loopback port for the whole session."""
    with serve_engine(cptrules_engine) as server:
        yield server


@pytest.fixture(scope="session")
def cptrules_channel(cptrules_server: RunningServer) -> Iterator[grpc.Channel]:
    """A connected channel to the session's server."""
    with cptrules_server.channel() as channel:
        yield channel


@pytest.fixture(scope="session")
def cptrules_stub(cptrules_channel: grpc.Channel) -> Any:
    """A CodeRulesService stub on the session's channel."""
    from .v1 import code_rules_service_pb2_grpc

    return code_rules_service_pb2_grpc.CodeRulesServiceStub(cptrules_channel)


@pytest.fixture
def cptrules_server_factory() -> Iterator[Callable[..., RunningServer]]:
    """Start servers of a test's own: call with ServerConfig fields (or `engine=` to share a
    loaded engine); every server started is stopped when the test ends."""
    with contextlib.ExitStack() as stack:
        def start(engine: Engine | None = None, **fields: Any) -> RunningServer:
            if engine is None:
                engine = ServerConfig(**fields).load()
            return stack.enter_context(serve_engine(engine))

        yield start

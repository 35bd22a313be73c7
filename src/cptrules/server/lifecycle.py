"""The life of a serving process: start, reload on SIGHUP, stop on SIGTERM or SIGINT.

Signal handlers only record a request. One reload thread does the reloading, one at a time;
SIGHUPs that arrive during a reload are coalesced into one more reload after it, so the last
SIGHUP is always followed by a reload that sees the files as they were then. A stop request is
honoured whatever a reload is doing: health turns NOT_SERVING, running calls get a bounded
grace period, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TextIO

from prometheus_client import CollectorRegistry

from ..engine import Engine
from ..errors import CptrulesError
from .app import Server, ServerOptions, build_server

log = logging.getLogger(__name__)


class Reloader:
    """A thread that reloads the engine when asked; requests made during a reload coalesce."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._wanted = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cptrules-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Ask for a reload; safe to call from a signal handler (it only sets a flag)."""
        self._wanted.set()

    def close(self) -> None:
        """No more reloads; a reload in progress is abandoned with the process."""
        self._closed.set()
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closed.is_set():
                return
            self._wanted.clear()  # requests from now on ask for another reload after this one
            self._reload_once()

    def _reload_once(self) -> None:
        try:
            new = self.engine.reload()
            log.info("reloaded ruleset %s", new.ruleset.revision)
        except CptrulesError as error:
            log.error("reload refused, still serving %s:\n%s", self.engine.ruleset.revision, error)
        except Exception:  # a reload must never take the running service down
            log.exception("reload failed, still serving %s", self.engine.ruleset.revision)


class ServingProcess:
    """A started server with its reload thread, stopped by `request_stop` (or a signal)."""

    def __init__(self, engine: Engine, server: Server, grace: float) -> None:
        self.engine = engine
        self.server = server
        self.grace = grace
        self.reloader = Reloader(engine)
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Ask the process to stop; safe to call from a signal handler."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reloader.request())

    def start(self) -> None:
        self.server.grpc_server.start()
        self.reloader.start()

    def wait(self) -> int:
        """Serve until asked to stop; then stop gracefully and return the exit status."""
        while not self._stop.wait(0.5):  # a timed wait keeps the main thread free for signals
            pass
        self.reloader.close()
        self.server.health.enter_graceful_shutdown()  # NOT_SERVING for every watcher, first
        stopped = self.server.grpc_server.stop(self.grace)
        if not stopped.wait(self.grace + 5):
            log.warning("the server did not stop within %.0f s of its grace period", self.grace)
        return 0


def serve(engine: Engine, host: str, port: int, options: ServerOptions, grace: float = 5.0,
          registry: CollectorRegistry | None = None, out: TextIO | None = None,
          install_signals: bool = True) -> int:
    """Serve `engine` on host:port until SIGTERM or SIGINT; SIGHUP reloads the rules and data.

    The first line written to `out` names the bound address (`--port 0` picks a free port)."""
    server = build_server(engine, f"{host}:{port}", options, registry)
    process = ServingProcess(engine, server, grace)
    if install_signals:
        process.install_signal_handlers()
    process.start()
    snap = engine.snapshot
    if out is not None:
        print(f"cptrules serving on {host}:{server.port} (ruleset {snap.ruleset.revision}, "
              f"{len(snap.codes)} codes, data: {', '.join(snap.data.source_names())})",
              file=out, flush=True)
    return process.wait()


"""The life of a serving process: bind, load, serve, reload on SIGHUP (and on file changes with
`--watch`), stop on SIGTERM or SIGINT; each step is a log event.

The port is bound before anything is loaded, so a port in use is one line, not a traceback
after seconds of loading. Signal handlers only record a request. One reload thread does the
reloading, one at a time; SIGHUPs (or file changes) that arrive during a reload are coalesced
into one more reload after it, so the last one is always followed by a reload that sees the
files as they were then; the old snapshot serves until the new one is checked. A stop request is
honoured whatever a reload is doing: health turns NOT_SERVING, the listener closes after
`shutdown_delay`, running calls get a bounded grace period, and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from prometheus_client import CollectorRegistry

from ..engine import Engine
from ..errors import CptrulesError, RuleFileErrors
from .app import Features, Server, ServerOptions, bind_server
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)


class Reloader:
    """A thread that reloads the engine when asked; requests made during a reload coalesce."""

    def __init__(self, engine: Engine, before: Callable[[], None] | None = None,
                 metrics: ServiceMetrics | None = None) -> None:
        self.engine = engine
        self.before = before     # e.g. re-read the token file: SIGHUP reloads every file
        self.metrics = metrics
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
        if self.before is not None:
            self.before()
        old = self.engine.ruleset.revision
        started = time.perf_counter()
        try:
            new = self.engine.reload()
            log.info("reloaded ruleset %s", new.ruleset.revision,
                     extra={"event_kind": "reload", "result": "success", "revision": new.ruleset.revision,
                            "previous_revision": old, "seconds": round(time.perf_counter() - started, 3)})
            self._count("success")
        except RuleFileErrors as error:
            log.error("reload refused, still serving %s", old,
                      extra={"event_kind": "reload", "result": "failure", "revision": old,
                             "problems": [str(p) for p in error.problems[:100]]})
            self._count("failure")
        except CptrulesError as error:
            log.error("reload refused, still serving %s", old,
                      extra={"event_kind": "reload", "result": "failure", "revision": old,
                             "problems": [error.message]})
            self._count("failure")
        except Exception:  # a reload must never take the running service down
            log.exception("reload failed, still serving %s", old,
                          extra={"event_kind": "reload", "result": "failure", "revision": old})
            self._count("failure")

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.reloads.labels(result).inc()


class Watcher:
    """Asks for a reload when a file under the watched directories changes (watchfiles).
    `start` returns once the watch is in place, so no change after it is missed."""

    def __init__(self, dirs: list[Path], reloader: Reloader) -> None:
        self.dirs = [d for d in dirs if d.is_dir()]
        self.reloader = reloader
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cptrules-watch", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        if self.dirs:
            self._thread.start()
            self._ready.wait(timeout)
            log.info("watching for changes", extra={"dirs": [str(d) for d in self.dirs]})

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from watchfiles import watch

        try:  # an empty set every 200 ms without changes: the first one says the watch is set up
            for changes in watch(*self.dirs, stop_event=self._stop, debounce=500, step=100,
                                 rust_timeout=200, yield_on_timeout=True, raise_interrupt=False):
                self._ready.set()
                if changes:
                    log.info("files changed, reloading",
                             extra={"files": sorted({path for _, path in changes})[:20]})
                    self.reloader.request()
        except Exception:  # watching is a convenience; SIGHUP still works without it
            log.exception("watching for changes stopped")
        finally:
            self._ready.set()


@dataclass
class Lifecycle:
    """How a serving process behaves around its calls (all times in seconds)."""

    grace: float = 5.0            # running calls get this long to finish after SIGTERM
    shutdown_delay: float = 0.0   # health NOT_SERVING this long before the listener closes
    watch: bool = False           # reload when the rules or data directories change
    on_reload: list[Callable[[], None]] = field(default_factory=list)  # run before each reload
    on_stop: list[Callable[[], None]] = field(default_factory=list)    # run after the server stopped


class ServingProcess:
    """A started server with its reload thread, stopped by `request_stop` (or a signal)."""

    def __init__(self, engine: Engine, server: Server, grace: float | Lifecycle,
                 metrics: ServiceMetrics | None = None) -> None:
        self.engine = engine
        self.server = server
        self.life = grace if isinstance(grace, Lifecycle) else Lifecycle(grace=grace)
        self.grace = self.life.grace
        self.reloader = Reloader(engine, self._before_reload, metrics)
        self.watcher = (Watcher([engine.snapshot.rules_dir, *engine.snapshot.data_dirs], self.reloader)
                        if self.life.watch else None)
        self._stop = threading.Event()

    def _before_reload(self) -> None:
        for hook in self.life.on_reload:
            hook()

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
        if self.watcher is not None:
            self.watcher.start()

    def wait(self) -> int:
        """Serve until asked to stop; then stop gracefully and return the exit status."""
        while not self._stop.wait(0.5):  # a timed wait keeps the main thread free for signals
            pass
        started = time.monotonic()
        log.info("stopping: health NOT_SERVING", extra={"event_kind": "drain", "grace": self.grace})
        self.reloader.close()
        if self.watcher is not None:
            self.watcher.close()
        self.server.health.enter_graceful_shutdown()  # NOT_SERVING for every watcher, first
        if self.life.shutdown_delay > 0:
            time.sleep(self.life.shutdown_delay)
        stopped = self.server.grpc_server.stop(self.grace)
        log.info("listener closed; running calls have %.1f s to finish", self.grace,
                 extra={"event_kind": "drain"})
        if not stopped.wait(self.grace + 5):
            log.warning("the server did not stop within %.0f s of its grace period", self.grace)
        for hook in self.life.on_stop:
            hook()
        log.info("stopped", extra={"event_kind": "shutdown",
                                   "seconds": round(time.monotonic() - started, 3)})
        return 0


def serve(engine: Engine | Callable[[], Engine], host: str, port: int, options: ServerOptions,
          grace: float | Lifecycle = 5.0, registry: CollectorRegistry | None = None,
          out: TextIO | None = None, install_signals: bool = True,
          features: Features | None = None) -> int:
    """Serve on host:port until SIGTERM or SIGINT; SIGHUP reloads the rules and data.

    `engine` may be a function that loads one: the port is then bound before it runs. The first
    line written to `out` names the bound address (`--port 0` picks a free port)."""
    life = grace if isinstance(grace, Lifecycle) else Lifecycle(grace=grace)
    bound = bind_server(f"{host}:{port}", options, registry, features)
    # debug: a start that fails while loading stays one line on stderr
    log.debug("bound", extra={"event_kind": "startup", "address": f"{host}:{bound.port}"})
    started = time.perf_counter()
    if not isinstance(engine, Engine):
        engine = engine()
    current = engine
    metrics = ServiceMetrics(registry, lambda: current) if registry is not None else None
    server = bound.install(engine)
    process = ServingProcess(engine, server, life, metrics)
    if install_signals:
        process.install_signal_handlers()
    process.start()
    snap = engine.snapshot
    log.info("serving", extra={"event_kind": "startup", "address": f"{host}:{server.port}",
                               "revision": snap.ruleset.revision, "codes": len(snap.codes),
                               "data": snap.data.source_names(),
                               "load_seconds": round(time.perf_counter() - started, 3)})
    if out is not None:
        print(f"cptrules serving on {host}:{server.port} (ruleset {snap.ruleset.revision}, "
              f"{len(snap.codes)} codes, data: {', '.join(snap.data.source_names())})",
              file=out, flush=True)
    return process.wait()

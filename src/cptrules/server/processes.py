"""`cptrules serve --processes N`: N serving processes on one port, for hosts with more cores
than one Python process can use (each process computes answers under its own interpreter lock).

The parent loads and checks the snapshot once (persisting it, see persisted.py), then forks the
workers, which inherit it copy-on-write; each binds the port with SO_REUSEPORT and the kernel
spreads incoming connections over them. The parent serves nothing. It holds the port with a bound,
never-listening socket for its whole life, so a second server started on the same port fails to
bind instead of silently sharing it (a bound socket that does not listen is sent no connections).

Signals: SIGTERM and SIGINT are forwarded (each worker drains as a single server does; the parent
exits 0 once all have stopped). SIGHUP makes the parent build and persist the new snapshot first;
only when that succeeds are the workers told to reload, and each then maps the persisted file in
(a refused reload leaves every worker on the old snapshot). A worker that dies on its own is
reported, the others are stopped and the parent exits 1: restarting is left to the supervisor
(systemd, Kubernetes), which sees one failed unit instead of a service quietly running short.
Workers stop by themselves when the parent disappears.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TextIO

from ..engine import Engine
from ..errors import CptrulesError
from .app import Features, ServerOptions, build_server
from .lifecycle import Reloader, ServingProcess

log = logging.getLogger(__name__)

_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
READY_TIMEOUT = 120.0  # seconds a worker may take to start serving before the start is abandoned


@dataclasses.dataclass(frozen=True)
class SharedPortOptions(ServerOptions):
    """A worker's limits: those of a single server, but its port is shared with its siblings."""

    def channel_options(self) -> list[tuple[str, int]]:
        return [(name, 1 if name == "grpc.so_reuseport" else value)
                for name, value in super().channel_options()]


def hold_port(host: str, port: int) -> socket.socket:
    """Check that nothing holds host:port (OSError when something does) and keep it for the
    workers: a socket bound with SO_REUSEPORT that never listens. Port 0 picks a free port."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    probe = socket.socket(family, kind, proto)  # without SO_REUSEPORT: fails on any holder
    try:
        probe.bind(address)
        chosen = probe.getsockname()[1]
    finally:
        probe.close()
    held = socket.socket(family, kind, proto)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((address[0], chosen, *address[2:]))
    return held


@dataclasses.dataclass
class Worker:
    pid: int
    ready: int  # read end of the pipe the worker writes one byte to once it serves


def _run_worker(engine: Engine, address: str, options: ServerOptions, grace: float, ready: int,
                parent: int, features: Features | None = None) -> int:
    server = build_server(engine, address, SharedPortOptions(**dataclasses.asdict(options)), features=features)
    process = ServingProcess(engine, server, grace)
    process.install_signal_handlers()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    process.start()
    os.write(ready, b"1")
    os.close(ready)

    def orphaned() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.error("worker %d: the parent process is gone; stopping", os.getpid())
        process.request_stop()

    threading.Thread(target=orphaned, name="cptrules-parent-watch", daemon=True).start()
    return process.wait()


def _fork_worker(engine: Engine, address: str, options: ServerOptions, grace: float,
                 features: Features | None = None) -> Worker:
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the parent's code
        status = 1
        try:
            os.close(read_end)
            status = _run_worker(engine, address, options, grace, write_end, parent, features)
        except BaseException:  # noqa: BLE001 - report, then leave without running parent code
            log.exception("worker %d failed", os.getpid())
        finally:
            logging.shutdown()
            os._exit(status)
    os.close(write_end)
    return Worker(pid, read_end)


class _Parent:
    """The parent's state: its workers, and the stop and reload requests its signals make."""

    def __init__(self, engine: Engine, grace: float) -> None:
        self.engine = engine
        self.grace = grace
        self.workers: dict[int, Worker] = {}
        self.stop = threading.Event()
        self.reloader = _ForwardingReloader(engine, self.forward)

    def forward(self, signum: int) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def reap(self) -> list[tuple[int, int]]:
        """Workers that have exited since the last call, with their exit codes."""
        gone = []
        for pid in list(self.workers):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                os.close(self.workers.pop(pid).ready)
                gone.append((pid, os.waitstatus_to_exitcode(status)))
        return gone

    def stop_all(self, deadline: float) -> bool:
        """SIGTERM every worker and wait for them; those still running at the deadline are
        killed. True when every worker stopped cleanly."""
        self.forward(signal.SIGTERM)
        clean = True
        while self.workers and time.monotonic() < deadline:
            for pid, code in self.reap():
                if code != 0:
                    log.error("worker %d exited with status %d while stopping", pid, code)
                    clean = False
            time.sleep(0.05)
        if self.workers:
            log.error("workers %s did not stop in time; killing them", sorted(self.workers))
            self.forward(signal.SIGKILL)
            while self.workers:
                self.reap()
                time.sleep(0.05)
            clean = False
        return clean


class _ForwardingReloader(Reloader):
    """The parent's reload: build (and persist) the new snapshot, then tell the workers."""

    def __init__(self, engine: Engine, forward: Callable[[int], None]) -> None:
        super().__init__(engine)
        self._forward = forward

    def _reload_once(self) -> None:
        try:
            new = self.engine.reload()
        except CptrulesError as error:
            log.error("reload refused, workers still serving %s:\n%s", self.engine.ruleset.revision, error)
            return
        except Exception:  # a reload must never take the running service down
            log.exception("reload failed, workers still serving %s", self.engine.ruleset.revision)
            return
        log.info("ruleset %s built and persisted; workers reload", new.ruleset.revision)
        self._forward(signal.SIGHUP)


class PortTakenError(CptrulesError):
    """The port to serve on is held by another socket."""

    reason = "PORT_TAKEN"


def serve_processes(load: Callable[[], Engine], host: str, port: int, options: ServerOptions,
                    processes: int, grace: float = 5.0, out: TextIO | None = None,
                    features: Features | None = None) -> int:
    """Load an engine with `load` (after checking the port is free: a taken port is an error
    before seconds of loading), then serve it from `processes` worker processes sharing
    host:port until SIGTERM or SIGINT. The first line written to `out` names the bound address,
    once every worker serves. Returns 0 after a requested stop, 1 when a worker failed."""
    try:
        held = hold_port(host, port)
    except OSError as error:
        raise PortTakenError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
    try:
        engine = load()
    except BaseException:
        held.close()
        raise
    address = f"{host}:{held.getsockname()[1]}"
    parent = _Parent(engine, grace)
    gc.collect()
    gc.freeze()  # the loaded snapshot stays shared with the workers: the collector never writes it
    # Signals wait until the handlers are in place (the workers install their own first).
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        for _ in range(processes):
            worker = _fork_worker(engine, address, options, grace, features)
            parent.workers[worker.pid] = worker
        signal.signal(signal.SIGTERM, lambda *_: parent.stop.set())
        signal.signal(signal.SIGINT, lambda *_: parent.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: parent.reloader.request())
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    try:
        if not _await_ready(parent):
            clean = parent.stop_all(time.monotonic() + grace + 5)
            return 0 if parent.stop.is_set() and clean else 1  # asked to stop while starting, or failed
        parent.reloader.start()
        snap = engine.snapshot
        if out is not None:
            print(f"cptrules serving on {address} (ruleset {snap.ruleset.revision}, {len(snap.codes)} codes, "
                  f"data: {', '.join(snap.data.source_names())}; {processes} processes: "
                  f"{', '.join(map(str, parent.workers))})", file=out, flush=True)
        while not parent.stop.wait(0.2):
            gone = parent.reap()
            if gone:
                for pid, code in gone:
                    log.error("worker %d exited with status %d; stopping the others", pid, code)
                parent.stop_all(time.monotonic() + grace + 5)
                return 1
        parent.reloader.close()
        return 0 if parent.stop_all(time.monotonic() + grace + 10) else 1
    finally:
        held.close()


def _await_ready(parent: _Parent) -> bool:
    """Wait until every worker serves; False when one exits first or none is ready in time."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = {w.ready: w.pid for w in parent.workers.values()}
    while waiting:
        if parent.stop.is_set() or time.monotonic() > deadline:
            return False
        ready, _, _ = select.select(list(waiting), [], [], 0.2)
        for fd in ready:
            pid = waiting.pop(fd)
            if os.read(fd, 1) != b"1":
                log.error("worker %d exited before serving", pid)
                return False
    return True


"""`verdict serve --processes N`: a supervisor that pre-forks N serving workers sharing one port (SO_REUSEPORT).

gRPC objects do not survive fork(), so the supervisor creates none: it prepares what the workers would otherwise
race for (the data directory, the admin token, the seeded store), forks, and then only watches. Each worker builds
its own server, store connection and snapshot, and hot-reloads on its own. A worker that dies is restarted (with a
back-off if it keeps dying at start); SIGTERM/SIGINT are forwarded so every worker drains its calls, and the
supervisor exits 0 when all of them did.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from .config import ServeConfig

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0)
HEALTHY_AFTER_S = 10.0  # a worker that lived this long resets its restart back-off


@dataclass
class _Worker:
    index: int
    pid: int = 0
    started_at: float = 0.0
    quick_deaths: int = 0


@dataclass
class Supervisor:
    config: ServeConfig
    workers: list[_Worker] = field(default_factory=list)
    stopping: bool = False

    def run(self) -> int:
        self._prepare_shared_state()
        signal.signal(signal.SIGTERM, self._forward_stop)
        signal.signal(signal.SIGINT, self._forward_stop)
        self.workers = [_Worker(index) for index in range(self.config.processes)]
        for worker in self.workers:
            self._spawn(worker)
        metrics_port = self._serve_metrics()
        extra = f", metrics on port {metrics_port}" if metrics_port else ""
        print(
            f"verdict: serving on {self.config.host}:{self.config.port} with {self.config.processes} processes "
            f"(pids {' '.join(str(w.pid) for w in self.workers)}; admin token: {self._token_path}{extra})",
            flush=True,
        )
        return self._watch()

    def _prepare_shared_state(self) -> None:
        # Imported here: these modules import nothing of gRPC's, but keep the supervisor's footprint obvious.
        from .auth import load_or_create_token
        from .stores import open_serving_store

        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        _token, self._token_path = load_or_create_token(config.admin_token_file, config.data_dir)
        open_serving_store(
            config.store_url(), seed=config.seed
        ).close()  # creates and seeds a new store once, before the workers race for it

    def _spawn(self, worker: _Worker) -> None:
        pid = os.fork()
        if pid == 0:
            self._become_worker(worker)
        worker.pid = pid
        worker.started_at = time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, pid)

    def _become_worker(self, worker: _Worker) -> None:
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            from .server import serve

            code = serve(self.config, shared_port=True, announce=False)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
            if not isinstance(exit_.code, int) and exit_.code is not None:
                print(exit_.code, file=sys.stderr, flush=True)
        except BaseException:
            log.exception("worker %d failed", worker.index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _serve_metrics(self) -> int:
        if self.config.metrics_port is None:
            return 0
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        server, _thread = start_http_server(self.config.metrics_port, addr=self.config.host, registry=registry)
        return server.server_port

    def _forward_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("received %s, stopping %d workers", signal.Signals(signum).name, len(self.workers))
        self.stopping = True
        for worker in self.workers:
            if worker.pid:
                with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
                    os.kill(worker.pid, signal.SIGTERM)

    def _watch(self) -> int:
        exit_code = 0
        while any(worker.pid for worker in self.workers):
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            worker = next((w for w in self.workers if w.pid == pid), None)
            if worker is None:
                continue
            worker.pid = 0
            code = os.waitstatus_to_exitcode(status)
            self._mark_dead(pid)
            if self.stopping:
                exit_code = exit_code or (code if code > 0 else 0)
                continue
            log.warning("worker %d (pid %d) exited with %d; restarting it", worker.index, pid, code)
            self._restart(worker)
        return exit_code

    def _restart(self, worker: _Worker) -> None:
        lived = time.monotonic() - worker.started_at
        worker.quick_deaths = 0 if lived > HEALTHY_AFTER_S else worker.quick_deaths + 1
        delay = RESTART_BACKOFF_S[min(worker.quick_deaths, len(RESTART_BACKOFF_S) - 1)]
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not self.stopping:
            time.sleep(0.05)
        if not self.stopping:
            self._spawn(worker)

    def _mark_dead(self, pid: int) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)


def supervise(config: ServeConfig) -> int:
    return Supervisor(config).run()

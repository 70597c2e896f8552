"""A stop request always ends the process, and a stuck process can be asked where it is stuck."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

from harness import ROOT

STUCK_AT_EXIT = textwrap.dedent(
    """
    import threading, time
    from verdict_server.service.shutdown import ExitDeadline

    threading.Thread(target=time.sleep, args=(3600,), name="never-finishes").start()  # not a daemon
    deadline = ExitDeadline(grace_s=0.0, margin_s=0.5).start()
    {finish}
    """
)


def _run(finish: str) -> subprocess.CompletedProcess[str]:
    code = STUCK_AT_EXIT.format(finish=finish)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_thread_that_never_finishes_does_not_keep_a_stopped_process_alive() -> None:
    done = _run("deadline.stopped()")
    assert done.returncode == 0, done.stderr  # the graceful stop had finished: only exit was stuck
    assert "exit (a thread did not finish) took longer than 0.5s" in done.stderr
    assert "in _shutdown" in done.stderr  # the dump shows the main thread waiting for the stuck one


def test_a_graceful_stop_that_never_finishes_exits_with_a_failure() -> None:
    done = _run("time.sleep(3600)")
    assert done.returncode == 1, done.stderr
    assert "the graceful stop took longer than 0.5s" in done.stderr
    assert "in <module>" in done.stderr  # the main thread's stack, still in the stop


def test_usr1_dumps_every_thread_of_a_running_server_and_it_keeps_serving(start_server) -> None:
    process = start_server()
    process.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "Thread 0x" not in process.stderr():
        assert time.monotonic() < deadline, process.stderr()
        time.sleep(0.05)
    assert process.proc.poll() is None
    process.wait_for_health()  # still SERVING
    assert process.stop() == 0

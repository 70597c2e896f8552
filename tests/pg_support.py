"""A real, throw-away PostgreSQL server for the tests, on a free loopback port.

The binaries come from the `pgserver` package (PostgreSQL 16, a dev dependency) or, failing that, from Debian's
`postgresql` package (/usr/lib/postgresql/*/bin). PostgreSQL refuses to run as root, so as root the server runs as
an unprivileged system user (created once with useradd, like pgserver itself does). The tests can stop and start
the server (`stop()`, `start()`) on the same port to show what replicas do while their database is down.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path

import psycopg
import pytest

SYSTEM_USER = "verdict-pg"  # runs postgres when the tests run as root
SUPERUSER = "postgres"  # the database role the tests connect as (trust authentication, loopback only)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine: under CI this fails the tests, elsewhere it skips them."""


def find_binaries() -> Path:
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver's import warns about XDG_RUNTIME_DIR, which is not used here
        from pgserver._commands import POSTGRES_BIN_PATH

        if (POSTGRES_BIN_PATH / "postgres").exists():
            return POSTGRES_BIN_PATH
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if debian:
        return debian[0].parent
    raise PostgresUnavailable(
        "no PostgreSQL binaries: install the dev extra (pip install -e '.[dev]' brings pgserver) or apt-get install"
        " postgresql"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """initdb into a temporary folder, then start/stop `postgres` on 127.0.0.1:port."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="verdict-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._user = _system_user() if os.geteuid() == 0 else None
        if self._user is not None:
            self.bin_dir = _reachable_by_others(self.bin_dir)
        self._names = itertools.count(1)
        if self._user is not None:
            os.chmod(self.root, 0o755)
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-sync")

    def start(self) -> PostgresServer:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        """A fast shutdown: sessions are cut, as when the database restarts or its host goes away."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (
            subprocess.run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"], **self._as_user()).returncode
            == 0
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "verdict_test") -> str:
        """A new empty database; returns its URL."""
        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _as_user(self) -> dict:
        kwargs: dict = {"capture_output": True, "text": True, "cwd": self.root}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[])
        return kwargs

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([str(self.bin_dir / program), *args], **self._as_user())
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}{log}")


_copies: dict[Path, Path] = {}


def _reachable_by_others(bin_dir: Path) -> Path:
    """The binaries where the unprivileged user can run them: in place when every folder above them is searchable
    by others, else a copy of pgserver's installation (about 40 MB) in a temporary folder, e.g. for a clone under
    /root. The copy keeps the layout the binaries' RPATH expects ($ORIGIN/../../../pgserver.libs)."""
    if all(folder.stat().st_mode & 0o001 for folder in bin_dir.resolve().parents):
        return bin_dir
    if bin_dir not in _copies:
        install = bin_dir.resolve().parent  # .../site-packages/pgserver/pginstall
        site = install.parent.parent
        target = Path(tempfile.mkdtemp(prefix="verdict-pg-bin-"))
        atexit.register(shutil.rmtree, target, True)
        os.chmod(target, 0o755)
        shutil.copytree(install, target / install.parent.name / install.name, symlinks=True)
        if (site / "pgserver.libs").is_dir():
            shutil.copytree(site / "pgserver.libs", target / "pgserver.libs", symlinks=True)
        _copies[bin_dir] = target / install.parent.name / install.name / bin_dir.name
    return _copies[bin_dir]


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True)
        return pwd.getpwnam(SYSTEM_USER)


def start_postgres() -> PostgresServer:
    """A new PostgreSQL server, or a skip where none can run; under CI=true a missing database fails the test."""
    try:
        return PostgresServer().start()
    except PostgresUnavailable as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no PostgreSQL: {err}")
        pytest.skip(str(err))

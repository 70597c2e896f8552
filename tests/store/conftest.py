"""Fixtures shared by the store tests.

`store` and `backend` are parametrised over SQLite and PostgreSQL (a real server, see tests/pg_support.py): the
contract every writable store keeps runs once per backend. `writer` drives every backend, the read-only folder
included, through its own way of changing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from verdict_server.store import DirectoryStore, SqliteStore, Store
from verdict_server.store.postgres import PostgresStore

WRITABLE = ["sqlite", "postgres"]


class Backend:
    """Opens stores of one backend on one database: `open()` again gives a second client of the same data (another
    connection, as another replica or process would have)."""

    def __init__(self, name: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.name = name
        self.url = request.getfixturevalue("postgres_url") if name == "postgres" else None
        self.path = tmp_path / "verdict.db"
        self.opened: list[Store] = []

    def open(self, **options) -> SqliteStore | PostgresStore:
        store = PostgresStore(self.url, **options) if self.url else SqliteStore(self.path, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=WRITABLE)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = Backend(request.param, request, tmp_path)
    yield made
    made.close()


@pytest.fixture
def store(backend: Backend) -> SqliteStore | PostgresStore:
    return backend.open()


class ApiWriter:
    """Changes a writable store through its API."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, name: str, content: str) -> None:
        self.store.put("RuleSet", name, content, author="tester")

    def remove(self, name: str) -> None:
        self.store.delete("RuleSet", name, author="tester")


class DirectoryWriter:
    """Changes a DirectoryStore the GitOps way: edit the files, then reload."""

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "rules"
        self.folder.mkdir()
        self.store: Store = DirectoryStore(self.folder)

    def write(self, name: str, content: str) -> None:
        (self.folder / f"{name}.yaml").write_text(content)
        self.store.reload()

    def remove(self, name: str) -> None:
        (self.folder / f"{name}.yaml").unlink()
        self.store.reload()


@pytest.fixture(params=[*WRITABLE, "directory"])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiWriter | DirectoryWriter]:
    if request.param == "directory":
        made: ApiWriter | DirectoryWriter = DirectoryWriter(tmp_path)
        yield made
        made.store.close()
        return
    backend = Backend(request.param, request, tmp_path)
    yield ApiWriter(backend.open())
    backend.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """For what only the SQLite backend has (its file, its fork handling)."""
    with SqliteStore(tmp_path / "verdict.db") as opened:
        yield opened

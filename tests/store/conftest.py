"""Fixtures shared by the store tests: a writer that drives either backend through its own way of changing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from verdict_server.store import DirectoryStore, SqliteStore, Store


class SqliteWriter:
    """Changes a SqliteStore through its API."""

    def __init__(self, tmp_path: Path) -> None:
        self.store: Store = SqliteStore(tmp_path / "verdict.db")

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


@pytest.fixture(params=["sqlite", "directory"])
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteWriter | DirectoryWriter]:
    made = SqliteWriter(tmp_path) if request.param == "sqlite" else DirectoryWriter(tmp_path)
    yield made
    made.store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "verdict.db") as opened:
        yield opened

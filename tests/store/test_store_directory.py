"""DirectoryStore: reloads changed files, keeps the last good version of a broken file, stays read-only."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from store.store_support import rule_set

from verdict_server.store import DirectoryStore, NotFound, ReadOnlyStore, StoreError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "rules"
    made.mkdir()
    return made


def test_reads_yaml_yml_and_json_recursively_and_skips_hidden_files(folder: Path) -> None:
    (folder / "a.yaml").write_text(rule_set("a"))
    (folder / "nested").mkdir()
    (folder / "nested" / "b.yml").write_text(rule_set("b"))
    (folder / "c.json").write_text('{"kind": "RouteTable", "name": "c", "systems": []}')
    (folder / "notes.txt").write_text(rule_set("ignored"))
    (folder / ".hidden.yaml").write_text(rule_set("hidden"))
    (folder / ".git").mkdir()
    (folder / ".git" / "x.yaml").write_text(rule_set("git"))
    store = DirectoryStore(folder)
    assert [(r.kind, r.name) for r in store.list()] == [("RouteTable", "c"), ("RuleSet", "a"), ("RuleSet", "b")]
    assert store.get("RuleSet", "b").author == os.path.join("nested", "b.yml")
    assert store.problems == []


def test_only_a_change_of_content_makes_a_new_version(folder: Path) -> None:
    path = folder / "a.yaml"
    path.write_text(rule_set("a", "one"))
    store = DirectoryStore(folder)
    marker = store.change_marker()
    path.write_text(rule_set("a", "one"))  # touched, same content
    assert store.reload() is False
    assert store.change_marker() == marker
    path.write_text(rule_set("a", "two"))
    assert store.reload() is True
    assert store.change_marker() != marker
    assert [r.version for r in store.history("RuleSet", "a")] == [2, 1]


def test_renaming_a_file_keeps_the_version(folder: Path) -> None:
    (folder / "a.yaml").write_text(rule_set("a"))
    store = DirectoryStore(folder)
    (folder / "a.yaml").rename(folder / "renamed.yaml")
    assert store.reload() is False
    assert store.get("RuleSet", "a").version == 1


def test_a_broken_file_keeps_the_last_good_version_and_is_reported(folder: Path) -> None:
    path = folder / "a.yaml"
    path.write_text(rule_set("a", "good"))
    store = DirectoryStore(folder)
    path.write_text("kind: RuleSet\nname: a\nrules: [unclosed\n")
    store.reload()
    assert store.get("RuleSet", "a").content == rule_set("a", "good")
    assert [p.path for p in store.problems] == ["a.yaml"]
    assert "not valid YAML" in str(store.problems[0])
    store.reload()  # still broken: still kept, not deleted on the second look
    assert store.get("RuleSet", "a").version == 1
    path.write_text(rule_set("a", "fixed"))
    store.reload()
    assert store.get("RuleSet", "a").content == rule_set("a", "fixed")
    assert store.problems == []


@pytest.mark.parametrize(
    ("file_name", "content", "complaint"),
    [
        ("list.yaml", "- a\n- b\n", "must be a mapping"),
        ("noname.yaml", "kind: RuleSet\n", "`name`"),
        ("numbername.yaml", "kind: RuleSet\nname: 12\n", "`name`"),
        ("bad.json", '{"kind": "RuleSet", ', "not valid JSON"),
        ("latin1.yaml", "kind: RuleSet\nname: caf\xe9\n", "not UTF-8"),
        ("two.yaml", rule_set("x") + "---\n" + rule_set("y"), "not valid YAML"),
    ],
)
def test_files_that_cannot_be_documents_are_problems_not_documents(
    folder: Path, file_name: str, content: str, complaint: str
) -> None:
    (folder / file_name).write_bytes(content.encode("latin-1"))
    (folder / "good.yaml").write_text(rule_set("good"))
    store = DirectoryStore(folder)
    assert [r.name for r in store.list()] == ["good"]
    assert [p.path for p in store.problems] == [file_name]
    assert complaint in store.problems[0].message


def test_a_file_above_the_size_limit_is_a_problem(folder: Path) -> None:
    (folder / "big.yaml").write_text(rule_set("big") + "#" * 200)
    store = DirectoryStore(folder, max_document_bytes=100)
    assert store.list() == []
    assert "at most 100 bytes" in store.problems[0].message


def test_the_first_file_in_sorted_order_wins_a_duplicate_name(folder: Path) -> None:
    (folder / "b.yaml").write_text(rule_set("same", "from-b"))
    (folder / "a.yaml").write_text(rule_set("same", "from-a"))
    store = DirectoryStore(folder)
    assert store.get("RuleSet", "same").content == rule_set("same", "from-a")
    assert [str(p) for p in store.problems] == ["b.yaml: RuleSet 'same' is already defined in a.yaml"]


def test_a_removed_file_becomes_a_tombstone(folder: Path) -> None:
    (folder / "a.yaml").write_text(rule_set("a"))
    store = DirectoryStore(folder)
    (folder / "a.yaml").unlink()
    assert store.reload() is True
    assert store.history("RuleSet", "a")[0].deleted is True


def test_a_vanished_folder_is_an_error_and_deletes_nothing(tmp_path: Path, folder: Path) -> None:
    (folder / "a.yaml").write_text(rule_set("a"))
    store = DirectoryStore(folder)
    folder.rename(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="does not exist"):
        store.reload()
    assert store.get("RuleSet", "a").version == 1
    with pytest.raises(StoreError):
        DirectoryStore(tmp_path / "missing")


def test_writes_are_refused(folder: Path) -> None:
    (folder / "a.yaml").write_text(rule_set("a"))
    store = DirectoryStore(folder)
    with pytest.raises(ReadOnlyStore, match="read-only"):
        store.put("RuleSet", "a", rule_set("a"))
    with pytest.raises(ReadOnlyStore):
        store.delete("RuleSet", "a")
    with pytest.raises(ReadOnlyStore):
        store.activate("RuleSet", "a", 1)
    with pytest.raises(NotFound):
        store.get("RuleSet", "a", 2)


def test_an_untouched_quiet_folder_is_not_reread(folder: Path) -> None:
    path = folder / "a.yaml"
    path.write_text(rule_set("a"))
    quiet = time.time() - 60  # older than the store's racy-timestamp window
    os.utime(path, (quiet, quiet))
    store = DirectoryStore(folder)
    # Same size and the same (old) timestamp: indistinguishable by stat, so the store does not read the file again.
    path.write_text(rule_set("a").replace("note: v", "note: w"))
    os.utime(path, (quiet, quiet))
    assert store.reload() is False
    assert store.get("RuleSet", "a").content == rule_set("a")
    os.utime(path)  # a real edit moves the timestamp
    assert store.reload() is True
    assert "note: w" in store.get("RuleSet", "a").content


def test_a_recently_modified_folder_is_reread_even_when_stat_looks_the_same(folder: Path) -> None:
    path = folder / "a.yaml"
    path.write_text(rule_set("a"))
    stamp = time.time()
    os.utime(path, (stamp, stamp))
    store = DirectoryStore(folder)
    path.write_text(rule_set("a").replace("note: v", "note: w"))
    os.utime(path, (stamp, stamp))  # a coarse file system could give the same timestamp to both edits
    assert store.reload() is True
    assert "note: w" in store.get("RuleSet", "a").content

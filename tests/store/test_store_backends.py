"""Read semantics every backend shares: versions, heads, history with tombstones, NotFound."""

from __future__ import annotations

import pytest
from store.store_support import rule_set

from verdict_server.store import NotFound, Store


def test_a_new_document_is_version_1_and_active(writer) -> None:
    writer.write("a", rule_set("a"))
    record = writer.store.get("RuleSet", "a")
    assert (record.version, record.active, record.deleted) == (1, True, False)
    assert record.content == rule_set("a")
    assert isinstance(writer.store, Store)


def test_every_change_is_a_new_version_and_old_versions_stay_readable(writer) -> None:
    writer.write("a", rule_set("a", "first"))
    writer.write("a", rule_set("a", "second"))
    assert writer.store.get("RuleSet", "a").version == 2
    old = writer.store.get("RuleSet", "a", 1)
    assert old.content == rule_set("a", "first")
    assert old.active is False
    assert writer.store.get("RuleSet", "a", 2).active is True


def test_delete_keeps_history_as_a_tombstone(writer) -> None:
    writer.write("a", rule_set("a"))
    writer.remove("a")
    with pytest.raises(NotFound, match="deleted"):
        writer.store.get("RuleSet", "a")
    assert writer.store.list() == []
    history = writer.store.history("RuleSet", "a")
    assert [(r.version, r.deleted, r.active) for r in history] == [(2, True, False), (1, False, False)]
    assert writer.store.get("RuleSet", "a", 1).content == rule_set("a")
    with pytest.raises(NotFound, match="records its deletion"):
        writer.store.get("RuleSet", "a", 2)


def test_a_deleted_document_can_come_back_with_the_next_version(writer) -> None:
    writer.write("a", rule_set("a"))
    writer.remove("a")
    writer.write("a", rule_set("a", "again"))
    head = writer.store.get("RuleSet", "a")
    assert (head.version, head.content) == (3, rule_set("a", "again"))


def test_list_returns_live_heads_sorted_and_filters_by_kind(writer) -> None:
    writer.write("b", rule_set("b"))
    writer.write("a", rule_set("a"))
    writer.write("c", rule_set("c"))
    writer.remove("c")
    assert [(r.name, r.version, r.active) for r in writer.store.list()] == [("a", 1, True), ("b", 1, True)]
    assert writer.store.heads() == writer.store.list()
    assert writer.store.list("RuleSet") == writer.store.list()
    assert writer.store.list("RouteTable") == []


def test_unknown_documents_and_versions_are_not_found(writer) -> None:
    writer.write("a", rule_set("a"))
    with pytest.raises(NotFound, match="does not exist"):
        writer.store.get("RuleSet", "missing")
    with pytest.raises(NotFound, match="no version 7") as caught:
        writer.store.get("RuleSet", "a", 7)
    assert caught.value.version == 7
    with pytest.raises(NotFound):
        writer.store.history("RuleSet", "missing")


def test_the_change_marker_moves_on_every_change_and_only_then(writer) -> None:
    writer.write("a", rule_set("a"))
    first = writer.store.change_marker()
    writer.store.reload()
    assert writer.store.change_marker() == first
    writer.write("a", rule_set("a", "changed"))
    second = writer.store.change_marker()
    assert second != first
    writer.remove("a")
    assert writer.store.change_marker() not in (first, second)

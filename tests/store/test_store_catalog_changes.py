"""The serving catalog over a tracking store (SQLite, PostgreSQL): a change recompiles only what moved.

Unchanged documents keep their compiled objects (the same object, not an equal copy), a changed one is served at
its new version, a deleted one disappears, and a write by another client of the store is picked up too.
"""

from __future__ import annotations

from store.conftest import Backend

from verdict_server import ql
from verdict_server.service.catalog import Catalog, compile_document


def rule_set(name: str, marker: str = "v") -> str:
    return (
        f"kind: RuleSet\nname: {name}\ndefault: {{note: {marker}}}\nrules:\n  - {{id: r, when: 'false', then: {{}}}}\n"
    )


TABLE = """kind: RouteTable
name: t
topic: a.b
systems:
  - {system: s, target: q, selected: true}
"""


def catalog_over(store) -> Catalog:
    catalog = Catalog(store, ql.Engine(stdlib=True))
    catalog.reload(force=True)
    return catalog


def test_a_change_recompiles_only_the_changed_document(backend: Backend) -> None:
    store, other = backend.open(), backend.open()  # `other` writes like another replica would
    for n in range(20):
        store.put("RuleSet", f"r{n}", rule_set(f"r{n}"))
    store.put("RouteTable", "t", TABLE)
    catalog = catalog_over(store)
    before = catalog.snapshot
    other.put("RuleSet", "r3", rule_set("r3", "changed"))
    assert catalog.reload() is True
    after = catalog.snapshot
    assert after.rule_sets["r3"].version == 2
    assert all(after.rule_sets[f"r{n}"] is before.rule_sets[f"r{n}"] for n in range(20) if n != 3)
    assert after.route_index is before.route_index  # no route table moved: the index is reused
    other.delete("RuleSet", "r5")
    other.put("RouteTable", "t", TABLE.replace("a.b", "a.c"))
    catalog.reload()
    assert "r5" not in catalog.snapshot.rule_sets and len(catalog.snapshot.rule_sets) == 19
    assert [t.topic for t in catalog.snapshot.route_tables] == ["a.c"]
    assert catalog.reload() is False  # nothing moved since


def test_installing_what_the_admin_compiled_serves_it_without_a_reload(backend: Backend) -> None:
    store = backend.open()
    store.put("RuleSet", "a", rule_set("a"))
    catalog = catalog_over(store)
    text = rule_set("a", "new")
    _, compiled = compile_document(text, catalog.engine)
    record = store.put("RuleSet", "a", text)
    catalog.install(record, compiled)
    served = catalog.snapshot.rule_sets["a"]
    assert served.version == 2
    catalog.reload()  # the marker moved: the reload finds version 2 already compiled and keeps it
    assert catalog.snapshot.rule_sets["a"] is served


def test_a_document_that_stops_compiling_keeps_its_last_good_version(backend: Backend) -> None:
    store = backend.open()
    store.put("RuleSet", "a", rule_set("a"))
    catalog = catalog_over(store)
    store.put("RuleSet", "a", "kind: RuleSet\nname: a\nrules: [nonsense\n")
    catalog.reload()
    assert catalog.snapshot.rule_sets["a"].version == 1
    assert [(e.name, e.version) for e in catalog.snapshot.load_errors] == [("a", 2)]
    store.put("RuleSet", "a", rule_set("a", "fixed"))
    catalog.reload()
    assert catalog.snapshot.rule_sets["a"].version == 3 and catalog.snapshot.load_errors == ()

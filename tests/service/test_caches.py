"""Caches bounded by bytes, and one compile per old version however many callers ask at once (issue 19 rows 6-7)."""

from __future__ import annotations

import threading
import time

from verdict_server import ql
from verdict_server.service import catalog as catalog_module
from verdict_server.service.catalog import Catalog, rule_set_bytes
from verdict_server.service.decision import ADHOC_CACHE_BYTES, adhoc_engine
from verdict_server.store import SqliteStore


def _rule_set(mark: int, rules: int = 30) -> str:
    body = "".join(
        f"  - id: r{i}\n    when: x == {i} && y != 'v{mark}-{i}'\n    then: {{hit: {i}}}\n" for i in range(rules)
    )
    return f"kind: RuleSet\nname: cached\ndefault: {{hit: -1}}\nrules:\n{body}"


def test_the_ad_hoc_cache_keeps_at_most_its_bytes() -> None:
    engine = adhoc_engine()
    for mark in range(40):
        engine.compile(" || ".join(f"x == {mark * 10_000 + i}" for i in range(3_500))).run({"x": 1})
    kept = engine.cache_info()["size"]
    one = ql.program_bytes(engine.compile(" || ".join(f"x == {i}" for i in range(3_500))))
    assert 1 <= kept <= ADHOC_CACHE_BYTES // one + 1


def test_the_pinned_cache_is_bounded_by_bytes(tmp_path) -> None:
    with SqliteStore(tmp_path / "v.db") as store:
        for mark in range(12):
            store.put("RuleSet", "cached", _rule_set(mark), expected_version=mark)
        one = None
        catalog = Catalog(store, ql.Engine(stdlib=True), pinned_cache_bytes=1)
        catalog.reload(force=True)
        one = rule_set_bytes(catalog.rule_set("cached", 1))
        catalog = Catalog(store, ql.Engine(stdlib=True), pinned_cache_bytes=3 * one + 100)
        catalog.reload(force=True)
        for version in range(1, 12):
            assert catalog.rule_set("cached", version).version == version
        assert 2 <= len(catalog._pinned) <= 3  # versions differ a little in size
        assert catalog._pinned.currsize <= 3 * one + 100


def test_concurrent_callers_of_one_old_version_share_one_compile(tmp_path, monkeypatch) -> None:
    compiles = []
    real = catalog_module.compile_document

    def slow_compile(text, engine, version=0):
        compiles.append(version)
        time.sleep(0.2)  # long enough for every caller to arrive while the first compiles
        return real(text, engine, version)

    with SqliteStore(tmp_path / "v.db") as store:
        store.put("RuleSet", "cached", _rule_set(0))
        store.put("RuleSet", "cached", _rule_set(1), expected_version=1)
        catalog = Catalog(store, ql.Engine(stdlib=True))
        catalog.reload(force=True)
        monkeypatch.setattr(catalog_module, "compile_document", slow_compile)
        got = []
        threads = [threading.Thread(target=lambda: got.append(catalog.rule_set("cached", 1))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert compiles == [1]
    assert len(got) == 8 and all(found is got[0] for found in got)

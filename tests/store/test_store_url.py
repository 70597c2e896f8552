"""Store URLs: one parser for `--store`, VERDICT_STORE, the TOML `store` key and `verdict store copy`."""

from __future__ import annotations

from pathlib import Path

import pytest

from verdict_server.service.config import ServeConfig
from verdict_server.store import DirectoryStore, SqliteStore, StoreError, StoreUrlError, open_store, parse_store_url
from verdict_server.store.url import redact


def test_each_scheme_names_its_backend(tmp_path: Path) -> None:
    assert parse_store_url("postgresql://u:p@db:5432/verdict?sslmode=require").scheme == "postgresql"
    assert parse_store_url("postgres://db/verdict").scheme == "postgresql"
    assert parse_store_url(f"sqlite://{tmp_path}/v.db").path == tmp_path / "v.db"
    with open_store(f"sqlite://{tmp_path}/v.db") as store:
        assert isinstance(store, SqliteStore)
    (tmp_path / "rules").mkdir()
    assert isinstance(open_store(f"dir://{tmp_path}/rules"), DirectoryStore)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "is not one of"),
        ("/var/lib/verdict/verdict.db", "is not one of"),
        ("mysql://db/verdict", "is not one of"),
        ("sqlite://var/lib/verdict.db", "has a host ('var')"),
        ("sqlite:///", "needs an absolute path"),
        ("dir:///srv/rules?ref=main", "takes no ?query"),
    ],
)
def test_a_bad_url_says_how_to_write_it(url: str, message: str) -> None:
    with pytest.raises(StoreUrlError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        parse_store_url(url)


def test_passwords_never_reach_messages() -> None:
    assert redact("postgresql://verdict:s3cret@db:5432/v") == "postgresql://verdict:***@db:5432/v"
    assert redact("postgresql://db/v") == "postgresql://db/v"
    with pytest.raises(StoreUrlError) as caught:
        parse_store_url("mysql://root:s3cret@db/v")
    assert "s3cret" not in str(caught.value)


def test_a_missing_source_is_refused_when_it_must_exist(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite://{tmp_path}/none.db", create=False)
    assert not (tmp_path / "none.db").exists()
    with pytest.raises(StoreError, match="is not a folder"):
        open_store(f"dir://{tmp_path}/missing")


def test_serve_settings_map_onto_one_store_url(tmp_path: Path) -> None:
    assert ServeConfig(data_dir=tmp_path).store_url() == f"sqlite://{tmp_path}/verdict.db"
    assert ServeConfig(rules_dir=tmp_path).store_url() == f"dir://{tmp_path}"
    assert ServeConfig(store="postgresql://db/v").store_url() == "postgresql://db/v"
    both = ServeConfig(store="postgresql://db/v", rules_dir=tmp_path).problems()
    assert any("--store and --rules-dir" in problem for problem in both)
    assert any("--store:" in problem for problem in ServeConfig(store="nonsense").problems())

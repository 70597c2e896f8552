"""Store URLs: the one way every command names a store.

- `postgresql://user:password@host:port/dbname?sslmode=...` (or `postgres://`) — a libpq URL, the shared store;
- `sqlite:///absolute/path/verdict.db` — the embedded default;
- `dir:///absolute/path` — a read-only folder of documents (GitOps).

`open_store(url)` parses, checks and opens; anything wrong raises `StoreUrlError` (a bad URL) or `StoreError`
(a store that cannot be opened) with one line that says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import StoreError
from .record import Store

POSTGRES_SCHEMES = ("postgresql", "postgres")
SCHEMES = (*POSTGRES_SCHEMES, "sqlite", "dir")
EXAMPLES = "postgresql://user:password@host:5432/verdict, sqlite:///var/lib/verdict/verdict.db or dir:///srv/rules"


class StoreUrlError(StoreError, ValueError):
    """The URL does not name a store Verdict can open; the message says how to write it."""


@dataclass(frozen=True)
class StoreUrl:
    scheme: str  # "postgresql", "sqlite" or "dir"
    url: str  # as given (may hold a password: print `redacted`, never this)
    path: Path | None = None  # sqlite and dir

    @property
    def redacted(self) -> str:
        return redact(self.url)


def parse_store_url(url: str) -> StoreUrl:
    """Checks the form of `url` without touching the store."""
    text = url.strip()
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if not rest or scheme not in SCHEMES:
        raise StoreUrlError(f"store URL {redact(text)!r} is not one of {EXAMPLES}")
    if scheme in POSTGRES_SCHEMES:
        return StoreUrl("postgresql", text)
    parts = urlsplit(text)
    if parts.netloc:
        raise StoreUrlError(
            f"store URL {text!r} has a host ({parts.netloc!r}); a {scheme} store is a local path: "
            f"{scheme}:///absolute/path (three slashes)"
        )
    if parts.query or parts.fragment:
        raise StoreUrlError(f"store URL {text!r}: a {scheme} URL takes no ?query or #fragment")
    path = Path(unquote(parts.path))
    if not path.is_absolute() or parts.path in ("", "/"):
        raise StoreUrlError(f"store URL {text!r} needs an absolute path: {scheme}:///absolute/path")
    return StoreUrl(scheme, text, path)


def sqlite_url(path: Path) -> str:
    return f"sqlite://{Path(path).resolve()}"


def dir_url(path: Path) -> str:
    return f"dir://{Path(path).resolve()}"


def open_store(url: str | StoreUrl, *, create: bool = True) -> Store:
    """Opens the store named by `url`. `create=False` refuses to create a SQLite file or a PostgreSQL schema
    (for the source of `verdict store copy`, which must exist)."""
    parsed = url if isinstance(url, StoreUrl) else parse_store_url(url)
    if parsed.scheme == "postgresql":
        from .postgres import PostgresStore  # psycopg is only imported when a PostgreSQL store is used

        return PostgresStore(parsed.url, create=create)
    assert parsed.path is not None
    if parsed.scheme == "dir":
        from .directory import DirectoryStore

        if not parsed.path.is_dir():
            raise StoreError(f"store {parsed.url}: {parsed.path} is not a folder")
        return DirectoryStore(parsed.path)
    from .sqlite import SqliteStore

    if not create and not parsed.path.is_file():
        raise StoreError(f"store {parsed.url}: {parsed.path} does not exist")
    return SqliteStore(parsed.path)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))

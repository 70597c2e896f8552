"""The read-only GitOps store: documents are the *.yaml / *.yml / *.json files of a folder, read recursively.

Git is the history; this store only numbers what it has seen since the process started: the first content of a
document is version 1 and every later change of content is the next version (kept in memory, so old versions stay
readable until restart). A removed file becomes a tombstone version.

A broken file never takes a good document away: if a file that used to define a document cannot be read any more
(bad YAML, no kind/name, too large), the document keeps its last good version and the file is listed in `problems`.
When two files define the same (kind, name), the first path in sorted order wins — the same choice in every process —
and the others are listed in `problems`.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from stat import S_ISREG

import yaml

from .errors import NotFound, ReadOnlyStore, StoreError
from .record import DEFAULT_MAX_DOCUMENT_BYTES, DocumentRecord, check_size, describe

SUFFIXES = (".yaml", ".yml", ".json")
RACY_SECONDS = 2.0

Key = tuple[str, str]


@dataclass(frozen=True)
class Problem:
    """A file that could not be used. `path` is relative to the store's folder."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class _ParsedFile:
    path: str
    key: Key
    content: str
    mtime: float


class _BadFile(Exception):
    pass


class DirectoryStore:
    """Documents read from a folder. Writes raise ReadOnlyStore: change the files (e.g. through git) instead."""

    def __init__(self, path: str | os.PathLike[str], *, max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> None:
        self.path = Path(path)
        self.max_document_bytes = max_document_bytes
        self._lock = threading.Lock()
        self._versions: dict[Key, builtins.list[DocumentRecord]] = {}  # oldest first; `active` is set on read
        self._key_of_path: dict[str, Key] = {}  # documents each file defined at the last reload
        self._problems: builtins.list[Problem] = []
        self._generation = 0
        self._reload_lock = threading.Lock()
        self._fingerprint: str | None = None  # of the files at the last rescan; None = rescan next time
        self.reload()

    # ------------------------------------------------------------------------------------------------ reads

    def get(self, kind: str, name: str, version: int = 0) -> DocumentRecord:
        with self._lock:
            versions = self._versions.get((kind, name))
            if not versions:
                raise NotFound(f"{describe(kind, name)} does not exist in {self.path}", kind=kind, name=name)
            head = versions[-1]
            if version == 0:
                if head.deleted:
                    raise NotFound(f"{describe(kind, name)} was deleted (its file was removed)", kind=kind, name=name)
                return replace(head, active=True)
            if not 1 <= version <= len(versions):
                raise NotFound(
                    f"{describe(kind, name)} has no version {version} (versions are 1 to {head.version})",
                    kind=kind,
                    name=name,
                    version=version,
                )
            found = versions[version - 1]
            if found.deleted:
                raise NotFound(
                    f"version {version} of {describe(kind, name)} records its deletion and has no content",
                    kind=kind,
                    name=name,
                    version=version,
                )
            return replace(found, active=found is head)

    def list(self, kind: str | None = None) -> builtins.list[DocumentRecord]:
        with self._lock:
            heads = [versions[-1] for versions in self._versions.values() if not versions[-1].deleted]
        return sorted(
            (replace(head, active=True) for head in heads if kind is None or head.kind == kind),
            key=lambda record: (record.kind, record.name),
        )

    def heads(self) -> builtins.list[DocumentRecord]:
        return self.list(None)

    def history(self, kind: str, name: str) -> builtins.list[DocumentRecord]:
        with self._lock:
            versions = builtins.list(self._versions.get((kind, name), ()))
        if not versions:
            raise NotFound(f"{describe(kind, name)} does not exist in {self.path}", kind=kind, name=name)
        head = versions[-1]
        return [replace(record, active=record is head and not record.deleted) for record in reversed(versions)]

    @property
    def problems(self) -> builtins.list[Problem]:
        """Files that could not be used at the last reload, with the reason."""
        with self._lock:
            return builtins.list(self._problems)

    # ----------------------------------------------------------------------------------------------- writes

    def put(self, kind: str, name: str, content: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        raise self._read_only(f"put {describe(kind, name)}")

    def delete(self, kind: str, name: str, *, expected_version: int = 0, author: str = "") -> DocumentRecord:
        raise self._read_only(f"delete {describe(kind, name)}")

    def activate(
        self, kind: str, name: str, version: int, *, expected_version: int = 0, author: str = ""
    ) -> DocumentRecord:
        raise self._read_only(f"activate version {version} of {describe(kind, name)}")

    # --------------------------------------------------------------------------------------------- changes

    def change_marker(self) -> int:
        """A counter bumped by reload() whenever a document changed.

        It describes what this store has loaded, not the files on disk: a marker read after reload() always matches
        the documents get()/heads() return, even if a file changes in between (the next reload() moves it).
        """
        with self._lock:
            return self._generation

    def reload(self) -> bool:
        """Rescan the folder. Returns whether any document changed. Raises StoreError if the folder is unreadable
        (then nothing changes: a vanished checkout must not look like every document was deleted)."""
        with self._reload_lock:  # two interleaved rescans could apply an older view after a newer one
            files, fingerprint = self._scan()
            if fingerprint is not None and fingerprint == self._fingerprint:
                return False
            changed = self._rescan(files)
            self._fingerprint = fingerprint
            return changed

    def _rescan(self, files: builtins.list[str]) -> bool:
        parsed: dict[Key, _ParsedFile] = {}
        broken: builtins.list[str] = []
        problems: builtins.list[Problem] = []
        for relative in files:
            try:
                document = self._parse(relative)
            except _BadFile as exc:
                broken.append(relative)
                problems.append(Problem(relative, str(exc)))
                continue
            first = parsed.get(document.key)
            if first is not None:
                problems.append(Problem(relative, f"{describe(*document.key)} is already defined in {first.path}"))
                continue
            parsed[document.key] = document
        with self._lock:
            kept = self._keep_last_good(broken, parsed)
            changed = self._apply(parsed, kept)
            self._key_of_path = {document.path: key for key, document in parsed.items()} | kept
            self._problems = problems
            if changed:
                self._generation += 1
        return changed

    def close(self) -> None:
        """Nothing to release: files are read and closed during reload()."""

    # ------------------------------------------------------------------------------------------- internals

    def _scan(self) -> tuple[builtins.list[str], str | None]:
        """The candidate files and a fingerprint of their (path, mtime, size): a stat per file, no reading.

        The fingerprint is None while a file was modified within the last RACY_SECONDS: on a file system with coarse
        timestamps a second same-size edit could keep the same fingerprint, so such a folder is re-read every time
        until it has been quiet for a while.
        """
        if not self.path.is_dir():
            raise StoreError(f"the document folder {self.path} does not exist or is not a directory")
        try:
            files = self._document_files()
        except OSError as exc:
            raise StoreError(f"cannot read the document folder {self.path}: {exc}") from exc
        digest = hashlib.blake2b(digest_size=16)
        digest.update(os.fsencode(os.path.realpath(self.path)))  # a symlink swapped to a new checkout counts too
        newest = 0.0
        for relative in files:
            try:
                stat = (self.path / relative).stat()
            except OSError:
                return files, None  # vanished or unreadable while we looked: let the rescan decide
            newest = max(newest, stat.st_mtime)
            digest.update(f"\0{relative}\0{stat.st_mtime_ns}\0{stat.st_size}".encode("utf-8", "surrogateescape"))
        if time.time() - newest < RACY_SECONDS:
            return files, None
        return files, digest.hexdigest()

    def _document_files(self) -> builtins.list[str]:
        """Relative paths of candidate files, sorted. Hidden files and folders (.git, editor swap files) are skipped."""
        found: builtins.list[str] = []
        for folder, subfolders, filenames in os.walk(self.path, onerror=_raise):
            subfolders[:] = [sub for sub in subfolders if not sub.startswith(".")]
            for filename in filenames:
                if filename.endswith(SUFFIXES) and not filename.startswith("."):
                    found.append(os.path.relpath(os.path.join(folder, filename), self.path))
        return sorted(found)

    def _parse(self, relative: str) -> _ParsedFile:
        raw, mtime = self._read_bounded(self.path / relative)
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadFile(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        kind, name = _kind_and_name(content, is_json=relative.endswith(".json"))
        try:
            check_size(kind, name, content, self.max_document_bytes)
        except StoreError as exc:
            raise _BadFile(str(exc)) from exc
        return _ParsedFile(path=relative, key=(kind, name), content=content, mtime=mtime)

    def _read_bounded(self, path: Path) -> tuple[bytes, float]:
        """The file's bytes, read only if it is a regular file within the size limit, and never more than the limit:
        a symlink to /dev/zero or a FIFO (git stores symlinks) or a 60 MB file costs a stat, not a read."""
        limit = self.max_document_bytes
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
        except OSError as exc:
            raise _BadFile(f"cannot read the file: {exc.strerror or exc}") from exc
        try:
            stat = os.fstat(fd)
            if not S_ISREG(stat.st_mode):
                raise _BadFile("not a regular file (a device, FIFO or socket, perhaps through a symlink): not read")
            if stat.st_size > limit:
                raise _BadFile(
                    f"the file is {stat.st_size} bytes; the store accepts at most {limit} bytes per document"
                )
            with os.fdopen(fd, "rb", closefd=False) as stream:
                raw = stream.read(limit + 1)
        except OSError as exc:
            raise _BadFile(f"cannot read the file: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        if len(raw) > limit:  # it grew after the stat
            raise _BadFile(
                f"the file grew past {limit} bytes while read; the store accepts at most {limit} bytes per document"
            )
        return raw, stat.st_mtime

    def _keep_last_good(self, broken: builtins.list[str], parsed: dict[Key, _ParsedFile]) -> dict[str, Key]:
        """Documents whose file is broken now and that no good file defines: they keep their current version."""
        kept: dict[str, Key] = {}
        for relative in broken:
            key = self._key_of_path.get(relative)
            if key is not None and key not in parsed and key in self._versions:
                kept[relative] = key
        return kept

    def _apply(self, parsed: dict[Key, _ParsedFile], kept: dict[str, Key]) -> bool:
        changed = False
        for key, document in parsed.items():
            head = self._head(key)
            if head is None or head.deleted or head.content != document.content:
                self._append(key, document.content, author=document.path, created_at=document.mtime, deleted=False)
                changed = True
        still_defined = parsed.keys() | set(kept.values())
        for key in builtins.list(self._versions):
            head = self._head(key)
            if head is not None and not head.deleted and key not in still_defined:
                self._append(key, "", author="", created_at=time.time(), deleted=True)
                changed = True
        return changed

    def _head(self, key: Key) -> DocumentRecord | None:
        versions = self._versions.get(key)
        return versions[-1] if versions else None

    def _append(self, key: Key, content: str, *, author: str, created_at: float, deleted: bool) -> None:
        versions = self._versions.setdefault(key, [])
        kind, name = key
        versions.append(
            DocumentRecord(
                kind=kind,
                name=name,
                version=len(versions) + 1,
                content=content,
                author=author,
                created_at=created_at,
                active=False,
                deleted=deleted,
            )
        )

    def _read_only(self, action: str) -> ReadOnlyStore:
        return ReadOnlyStore(
            f"cannot {action}: the store is the read-only folder {self.path}; change its files instead"
        )


def _kind_and_name(content: str, *, is_json: bool) -> Key:
    """Read only the top-level `kind` and `name`; the service validates the rest of the document.

    YAML is composed into nodes, not constructed, so an alias bomb costs nothing here.
    """
    try:
        if is_json:
            top = json.loads(content)
            fields = top if isinstance(top, dict) else None
        else:
            node = yaml.compose(content, Loader=yaml.SafeLoader)
            fields = _top_level_scalars(node) if isinstance(node, yaml.MappingNode) else None
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise _BadFile(f"not valid {'JSON' if is_json else 'YAML'}: {exc}") from exc
    if fields is None:
        raise _BadFile("the document must be a mapping with `kind` and `name`")
    kind, name = fields.get("kind"), fields.get("name")
    missing = [field for field, value in (("kind", kind), ("name", name)) if not isinstance(value, str) or not value]
    if missing:
        raise _BadFile(f"the document needs a non-empty string `{'` and `'.join(missing)}`")
    return kind, name  # type: ignore[return-value]


def _top_level_scalars(node: yaml.MappingNode) -> dict[str, str]:
    return {
        key.value: value.value
        for key, value in node.value
        if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode) and value.tag.endswith(":str")
    }


def _raise(error: OSError) -> None:
    raise error

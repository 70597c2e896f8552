"""AdminService: versioned documents behind the bearer token.

A document is compiled before it is stored, so nothing that would fail to serve is ever written. After a write the
catalog installs that compiled document at once (no second compile), so the writer's own server serves the new
version on the next call; other replicas hear of it from the store (a notification, or the change marker). A write whose content equals the head's writes nothing and answers
`unchanged` (a re-applied file, a switch already in that state, a rollback to what is already served).
Every error leaves through errors.py, with its stable reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import grpc

from verdict.v1 import admin_pb2, admin_pb2_grpc

from ..document import KINDS, ROUTE_TABLE, DocumentInvalid, Problem, SourceDocument, load_document
from ..routing import SystemNotFound, edit_selection
from ..store import DocumentRecord, NotFound, StoreError, VersionConflict
from . import errors
from .auth import TokenCheck
from .catalog import Catalog, Compiled, compile_document, compile_parsed

log = logging.getLogger(__name__)

MAX_SELECTION_RETRIES = 5
MAX_ERRORS_IN_MESSAGE = 20
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# A page stops before this much content, so a listing always fits the 4 MiB message limit whatever the documents
# (each is at most 1 MiB in the store): a history of 300 large versions once could not be read at all.
MAX_PAGE_CONTENT_BYTES = 1024 * 1024

T = TypeVar("T")


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, catalog: Catalog, token_check: TokenCheck) -> None:
        self._catalog = catalog
        self._store = catalog.store
        self._auth = token_check

    def PutDocument(self, request, context):
        self._auth.require(context)
        doc, compiled = self._compile(request.content, context)
        with _store_errors(context):
            head = self._unchanged_head(doc.kind, doc.name, request.content, request.expected_version)
            if head is not None:
                return admin_pb2.PutDocumentResponse(document=_version(head), unchanged=True)
            record = self._store.put(
                doc.kind, doc.name, request.content, expected_version=request.expected_version, author=request.author
            )
        return admin_pb2.PutDocumentResponse(document=self._written(record, "put", compiled))

    def GetDocument(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        with _store_errors(context):
            record = self._store.get(request.kind, request.name, request.version)
        return admin_pb2.GetDocumentResponse(document=_document(record, include_content=True))

    def ListDocuments(self, request, context):
        self._auth.require(context)
        if request.kind:
            _require_kind(request.kind, context)
        after = _decode_token(request.page_token, context, lambda v: (str(v[0]), str(v[1])))
        with _store_errors(context):
            records = self._store.list(request.kind or None)
        if after is not None:
            records = [r for r in records if (r.kind, r.name) > after]
        page, more = _page(records, request.page_size, request.include_content, context)
        token = _encode_token([page[-1].kind, page[-1].name]) if more else ""
        return admin_pb2.ListDocumentsResponse(
            documents=[_document(r, request.include_content) for r in page], next_page_token=token
        )

    def ListVersions(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        before = _decode_token(request.page_token, context, int)
        with _store_errors(context):
            records = self._store.history(request.kind, request.name)
        if before is not None:
            records = [r for r in records if r.version < before]
        page, more = _page(records, request.page_size, request.include_content, context)
        token = _encode_token(page[-1].version) if more else ""
        return admin_pb2.ListVersionsResponse(
            documents=[_document(r, request.include_content) for r in page], next_page_token=token
        )

    def DeleteDocument(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        with _store_errors(context):
            record = self._store.delete(
                request.kind, request.name, expected_version=request.expected_version, author=request.author
            )
        return admin_pb2.DeleteDocumentResponse(document=self._written(record, "delete", None))

    def ValidateDocument(self, request, context):
        self._auth.require(context)
        try:
            doc, _ = compile_document(request.content, self._catalog.engine)
        except DocumentInvalid as err:
            return admin_pb2.ValidateDocumentResponse(ok=False, errors=[_problem(p) for p in err.problems])
        return admin_pb2.ValidateDocumentResponse(ok=True, kind=doc.kind, name=doc.name)

    def ActivateVersion(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        if request.version <= 0:
            errors.invalid_field(context, "version", "the version to activate is required")
        with _store_errors(context):
            old = self._store.get(request.kind, request.name, request.version)
            if old.deleted:
                errors.invalid_field(
                    context,
                    "version",
                    f"version {request.version} records a deletion; activate a version with content",
                )
            # Re-check that the old text still compiles: the language or server may have changed since it was written.
            _, compiled = self._compile(old.content, context)
            head = self._unchanged_head(request.kind, request.name, old.content, request.expected_version)
            if head is not None:
                return admin_pb2.ActivateVersionResponse(document=_version(head), unchanged=True)
            record = self._store.activate(
                request.kind,
                request.name,
                request.version,
                expected_version=request.expected_version,
                author=request.author,
            )
        return admin_pb2.ActivateVersionResponse(
            document=self._written(record, f"activate v{request.version}", compiled)
        )

    def SetSelection(self, request, context):
        self._auth.require(context)
        _require(request.table, "table", context)
        _require(request.system, "system", context)
        # Without an expected_version from the caller we still compare-and-swap against the version we edited,
        # retrying on a concurrent write, so no other change to the table is lost.
        for _ in range(MAX_SELECTION_RETRIES):
            with _store_errors(context):
                head = self._store.get(ROUTE_TABLE, request.table)
                _check_expected(head, request.expected_version)
                try:
                    edited = edit_selection(self._parsed(head, context), request.system, request.selected)
                except SystemNotFound:
                    errors.abort(
                        context,
                        grpc.StatusCode.NOT_FOUND,
                        errors.SYSTEM_NOT_FOUND,
                        f"route table '{request.table}' has no system '{request.system}'",
                        metadata={"table": request.table, "system": request.system},
                    )
                content = edited.text
                if content == head.content:
                    return admin_pb2.SetSelectionResponse(document=_version(head), unchanged=True)
                compiled = self._compile_parsed(edited, context)
                try:
                    record = self._store.put(
                        ROUTE_TABLE, request.table, content, expected_version=head.version, author=request.author
                    )
                except VersionConflict:
                    if request.expected_version:
                        raise
                    continue
            action = "select" if request.selected else "deselect"
            return admin_pb2.SetSelectionResponse(
                document=self._written(record, f"{action} {request.system}", compiled)
            )
        errors.abort(
            context,
            grpc.StatusCode.ABORTED,
            errors.VERSION_CONFLICT,
            f"route table '{request.table}' kept changing; try again",
            metadata={"kind": ROUTE_TABLE, "name": request.table},
        )

    def _compile(self, content: str, context: grpc.ServicerContext) -> tuple[SourceDocument, Compiled]:
        try:
            return compile_document(content, self._catalog.engine)
        except DocumentInvalid as err:
            errors.invalid_document(context, err.problems, _problems_message(err.problems))

    def _parsed(self, head: DocumentRecord, context: grpc.ServicerContext) -> SourceDocument:
        """The head's parsed document: the one the snapshot serving that version already holds, else parsed now."""
        serving = self._catalog.document(head.kind, head.name, head.version)
        if serving is not None and serving.text == head.content:
            return serving
        try:
            return load_document(head.content)
        except DocumentInvalid as err:
            errors.invalid_document(context, err.problems, _problems_message(err.problems))

    def _compile_parsed(self, doc: SourceDocument, context: grpc.ServicerContext) -> Compiled:
        try:
            return compile_parsed(doc, self._catalog.engine)
        except DocumentInvalid as err:
            errors.invalid_document(context, err.problems, _problems_message(err.problems))

    def _unchanged_head(self, kind: str, name: str, content: str, expected_version: int) -> DocumentRecord | None:
        """The live head when it already holds `content` (after the same expected_version check a write does)."""
        try:
            head = self._store.get(kind, name)
        except NotFound:
            return None
        _check_expected(head, expected_version)
        return head if head.content == content else None

    def _written(self, record: DocumentRecord, action: str, compiled: Compiled | None) -> admin_pb2.DocumentVersion:
        """Called only after the store committed the write: what is acknowledged is stored."""
        log.info("%s %s/%s -> v%d by %r", action, record.kind, record.name, record.version, record.author)
        self._catalog.install(record, compiled)
        return _version(record)


@contextmanager
def _store_errors(context: grpc.ServicerContext) -> Iterator[None]:
    try:
        yield
    except StoreError as err:
        if not isinstance(err, NotFound | VersionConflict):
            log.error("store error: %s", err)
        errors.store_failure(context, err)


def _check_expected(head: DocumentRecord, expected_version: int) -> None:
    if expected_version > 0 and expected_version != head.version:
        raise VersionConflict(
            f"{head.kind} '{head.name}' is at version {head.version}, not the expected {expected_version}",
            kind=head.kind,
            name=head.name,
            expected=expected_version,
            actual=head.version,
        )


def _require(value: str, field: str, context: grpc.ServicerContext) -> None:
    if not value:
        errors.invalid_field(context, field, "required")


def _require_kind(kind: str, context: grpc.ServicerContext) -> None:
    if kind not in KINDS:
        errors.invalid_field(context, "kind", f"must be {' or '.join(KINDS)}, got {kind!r}")


def _page(
    records: Sequence[DocumentRecord], page_size: int, include_content: bool, context: grpc.ServicerContext
) -> tuple[Sequence[DocumentRecord], bool]:
    """The first page of records, and whether more follow. A page holds at least one record."""
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        errors.invalid_field(context, "page_size", f"must be 0 (the default, {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE}")
    limit = page_size or DEFAULT_PAGE_SIZE
    taken, content_bytes = 0, 0
    for record in records[:limit]:
        if include_content:
            content_bytes += len(record.content.encode("utf-8", errors="surrogatepass"))
            if taken and content_bytes > MAX_PAGE_CONTENT_BYTES:
                break
        taken += 1
    return records[:taken], taken < len(records)


def _encode_token(position: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def _decode_token(token: str, context: grpc.ServicerContext, parse: Callable[[object], T]) -> T | None:
    if not token:
        return None
    try:
        return parse(json.loads(base64.urlsafe_b64decode(token.encode("ascii"))))
    except (ValueError, TypeError, IndexError, KeyError, UnicodeError, binascii.Error):
        errors.invalid_field(context, "page_token", "not a token this server gave (pass next_page_token unchanged)")


def _problems_message(problems: list[Problem]) -> str:
    shown = [str(p) for p in problems[:MAX_ERRORS_IN_MESSAGE]]
    more = len(problems) - len(shown)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"invalid document: {'; '.join(shown)}{suffix}"


def _problem(problem: Problem) -> admin_pb2.DocumentError:
    return admin_pb2.DocumentError(
        message=problem.message, line=problem.line, column=problem.column, path=problem.path, code=problem.code
    )


def _version(record: DocumentRecord) -> admin_pb2.DocumentVersion:
    return admin_pb2.DocumentVersion(kind=record.kind, name=record.name, version=record.version)


def _document(record: DocumentRecord, include_content: bool) -> admin_pb2.Document:
    doc = admin_pb2.Document(
        kind=record.kind,
        name=record.name,
        version=record.version,
        content=record.content if include_content else "",
        active=record.active,
        author=record.author,
        deleted=record.deleted,
    )
    doc.created_at.FromNanoseconds(int(record.created_at * 1e9))
    return doc

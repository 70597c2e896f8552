"""AdminService: versioned documents behind the bearer token.

A document is compiled before it is stored, so nothing that would fail to serve is ever written. After a write the
catalog installs that compiled document at once (no second compile), so the writer's own server serves the new
version on the next call; other replicas hear of it from the store (a notification, or the change marker).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from verdict.v1 import admin_pb2, admin_pb2_grpc

from ..document import KINDS, ROUTE_TABLE, DocumentInvalid, Problem, SourceDocument, load_document
from ..routing import SystemNotFound, edit_selection
from ..store import DocumentRecord, DocumentTooLarge, NotFound, ReadOnlyStore, StoreError, StoreFull, VersionConflict
from .auth import TokenCheck
from .catalog import Catalog, Compiled, compile_document, compile_parsed

log = logging.getLogger(__name__)

MAX_SELECTION_RETRIES = 5
MAX_ERRORS_IN_MESSAGE = 20


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, catalog: Catalog, token_check: TokenCheck) -> None:
        self._catalog = catalog
        self._store = catalog.store
        self._auth = token_check

    def PutDocument(self, request, context):
        self._auth.require(context)
        doc, compiled = self._compile(request.content, context)
        with _store_errors(context):
            record = self._store.put(
                doc.kind, doc.name, request.content, expected_version=request.expected_version, author=request.author
            )
        return self._written(record, "put", compiled)

    def GetDocument(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        with _store_errors(context):
            return _document(self._store.get(request.kind, request.name, request.version))

    def ListDocuments(self, request, context):
        self._auth.require(context)
        if request.kind:
            _require_kind(request.kind, context)
        with _store_errors(context):
            records = self._store.list(request.kind or None)
        return admin_pb2.ListDocumentsResponse(documents=[_document(r) for r in records])

    def ListVersions(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        with _store_errors(context):
            records = self._store.history(request.kind, request.name)
        return admin_pb2.ListDocumentsResponse(documents=[_document(r) for r in records])

    def DeleteDocument(self, request, context):
        self._auth.require(context)
        _require_kind(request.kind, context)
        _require(request.name, "name", context)
        with _store_errors(context):
            record = self._store.delete(
                request.kind, request.name, expected_version=request.expected_version, author=request.author
            )
        return self._written(record, "delete", None)

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
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "version: the version to activate is required")
        with _store_errors(context):
            old = self._store.get(request.kind, request.name, request.version)
            if old.deleted:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"version {request.version} records a deletion; activate a version with content",
                )
            # Re-check that the old text still compiles: the language or server may have changed since it was written.
            _, compiled = self._compile(old.content, context)
            record = self._store.activate(
                request.kind,
                request.name,
                request.version,
                expected_version=request.expected_version,
                author=request.author,
            )
        return self._written(record, f"activate v{request.version}", compiled)

    def SetSelection(self, request, context):
        self._auth.require(context)
        _require(request.table, "table", context)
        _require(request.system, "system", context)
        # Without an expected_version from the caller we still compare-and-swap against the version we edited,
        # retrying on a concurrent write, so no other change to the table is lost.
        for _ in range(MAX_SELECTION_RETRIES):
            with _store_errors(context):
                head = self._store.get(ROUTE_TABLE, request.table)
                if request.expected_version and request.expected_version != head.version:
                    raise VersionConflict(
                        f"route table '{request.table}' is at version {head.version}, not the expected {request.expected_version}",
                        kind=ROUTE_TABLE,
                        name=request.table,
                        expected=request.expected_version,
                        actual=head.version,
                    )
                try:
                    edited = edit_selection(self._parsed(head, context), request.system, request.selected)
                except SystemNotFound:
                    context.abort(
                        grpc.StatusCode.NOT_FOUND, f"route table '{request.table}' has no system '{request.system}'"
                    )
                compiled = self._compile_parsed(edited, context)
                content = edited.text
                try:
                    record = self._store.put(
                        ROUTE_TABLE, request.table, content, expected_version=head.version, author=request.author
                    )
                except VersionConflict:
                    if request.expected_version:
                        raise
                    continue
            action = "select" if request.selected else "deselect"
            return self._written(record, f"{action} {request.system}", compiled)
        context.abort(grpc.StatusCode.ABORTED, f"route table '{request.table}' kept changing; try again")

    def _compile(self, content: str, context: grpc.ServicerContext) -> tuple[SourceDocument, Compiled]:
        try:
            return compile_document(content, self._catalog.engine)
        except DocumentInvalid as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _problems_message(err.problems))

    def _parsed(self, head: DocumentRecord, context: grpc.ServicerContext) -> SourceDocument:
        """The head's parsed document: the one the snapshot serving that version already holds, else parsed now."""
        serving = self._catalog.document(head.kind, head.name, head.version)
        if serving is not None and serving.text == head.content:
            return serving
        try:
            return load_document(head.content)
        except DocumentInvalid as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _problems_message(err.problems))

    def _compile_parsed(self, doc: SourceDocument, context: grpc.ServicerContext) -> Compiled:
        try:
            return compile_parsed(doc, self._catalog.engine)
        except DocumentInvalid as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _problems_message(err.problems))

    def _written(self, record: DocumentRecord, action: str, compiled: Compiled | None) -> admin_pb2.DocumentVersion:
        """Called only after the store committed the write: what is acknowledged is stored."""
        log.info("%s %s/%s -> v%d by %r", action, record.kind, record.name, record.version, record.author)
        self._catalog.install(record, compiled)
        return admin_pb2.DocumentVersion(kind=record.kind, name=record.name, version=record.version)


@contextmanager
def _store_errors(context: grpc.ServicerContext) -> Iterator[None]:
    """Maps store exceptions to the gRPC status a caller can act on."""
    try:
        yield
    except NotFound as err:
        context.abort(grpc.StatusCode.NOT_FOUND, str(err))
    except VersionConflict as err:
        context.abort(grpc.StatusCode.ABORTED, str(err))
    except ReadOnlyStore as err:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(err))
    except StoreFull as err:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
    except DocumentTooLarge as err:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"content: {err}")
    except StoreError as err:
        log.error("store error: %s", err)
        context.abort(grpc.StatusCode.UNAVAILABLE, f"the store failed: {err}")


def _require(value: str, field: str, context: grpc.ServicerContext) -> None:
    if not value:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: required")


def _require_kind(kind: str, context: grpc.ServicerContext) -> None:
    if kind not in KINDS:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"kind: must be {' or '.join(KINDS)}, got {kind!r}")


def _problems_message(problems: list[Problem]) -> str:
    shown = [str(p) for p in problems[:MAX_ERRORS_IN_MESSAGE]]
    more = len(problems) - len(shown)
    suffix = f"; and {more} more" if more > 0 else ""
    return f"invalid document: {'; '.join(shown)}{suffix}"


def _problem(problem: Problem) -> admin_pb2.DocumentError:
    return admin_pb2.DocumentError(
        message=problem.message, line=problem.line, column=problem.column, path=problem.path, code=problem.code
    )


def _document(record: DocumentRecord) -> admin_pb2.Document:
    doc = admin_pb2.Document(
        kind=record.kind,
        name=record.name,
        version=record.version,
        content=record.content,
        active=record.active,
        author=record.author,
        deleted=record.deleted,
    )
    doc.created_at.FromNanoseconds(int(record.created_at * 1e9))
    return doc

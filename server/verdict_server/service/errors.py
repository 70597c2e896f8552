"""The one edge between Verdict's domain errors and gRPC statuses.

Every non-OK answer leaves through `abort`: a status code, a human message, and `google.rpc.Status` details in the
`grpc-status-details-bin` trailer — an `ErrorInfo` whose `reason` is stable (callers switch on it, never on the
message text) with metadata naming what failed, `BadRequest.FieldViolation`s for bad fields and document problems,
and `RetryInfo` where waiting and retrying can help. docs/errors.md lists every reason with its code.

The codes are chosen for retry policies: a rule set that breaks its own time or memory budget answers
FAILED_PRECONDITION (it fails the same way every time until the rule set changes), never DEADLINE_EXCEEDED, which
stays the caller's own deadline; UNAVAILABLE and RESOURCE_EXHAUSTED are the codes a retry can cure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NoReturn

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from ..document import Problem
from ..store import (
    DocumentTooLarge,
    NotFound,
    ReadOnlyStore,
    StoreError,
    StoreFull,
    VersionConflict,
)

DOMAIN = "verdict"

# ErrorInfo.reason values: part of the v1 contract (docs/errors.md); add new ones, never rename.
INVALID_REQUEST = "INVALID_REQUEST"
FACTS_INVALID = "FACTS_INVALID"
RULE_SET_NOT_FOUND = "RULE_SET_NOT_FOUND"
RULE_FAILED = "RULE_FAILED"
SCRIPT_TIMEOUT = "SCRIPT_TIMEOUT"
RESULT_NOT_RETURNABLE = "RESULT_NOT_RETURNABLE"
ADHOC_DISABLED = "ADHOC_DISABLED"
EXPRESSION_INVALID = "EXPRESSION_INVALID"
EXPRESSION_FAILED = "EXPRESSION_FAILED"
DOCUMENT_NOT_FOUND = "DOCUMENT_NOT_FOUND"
DOCUMENT_INVALID = "DOCUMENT_INVALID"
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
SYSTEM_NOT_FOUND = "SYSTEM_NOT_FOUND"
VERSION_CONFLICT = "VERSION_CONFLICT"
READ_ONLY_STORE = "READ_ONLY_STORE"
STORE_FULL = "STORE_FULL"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
TOKEN_MISSING = "TOKEN_MISSING"
TOKEN_INVALID = "TOKEN_INVALID"
REQUEST_UNDECODABLE = "REQUEST_UNDECODABLE"
OVERLOADED = "OVERLOADED"
BATCH_STOPPED = "BATCH_STOPPED"  # an EvaluateBatch stopped at its deadline, the server's maximum, or a cancel

QL_TIMEOUT_CODE = "SCRIPT_TIME_OUT"  # the QLExpress error code of a broken time budget
STORE_RETRY_DELAY_S = 1.0
OVERLOAD_RETRY_DELAY_S = 0.2
MAX_VIOLATIONS = 100  # a document with thousands of problems must not make a trailer larger than gRPC accepts


def abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    reason: str,
    message: str,
    *,
    metadata: Mapping[str, object] | None = None,
    violations: Iterable[tuple[str, str]] = (),
    retry_delay_s: float | None = None,
) -> NoReturn:
    """Ends the call with `code` and `message`, carrying ErrorInfo(reason, metadata), the (field, description)
    violations as BadRequest, and RetryInfo when a delay is given. Trailing metadata already set (the worker id)
    is kept."""
    status = status_pb2.Status(code=code.value[0], message=message)
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    for key, value in (metadata or {}).items():
        if value is not None and value != "":
            info.metadata[key] = str(value)
    status.details.add().Pack(info)
    bad_request = error_details_pb2.BadRequest()
    for field, description in violations:
        if len(bad_request.field_violations) >= MAX_VIOLATIONS:
            break
        bad_request.field_violations.add(field=field, description=description)
    if bad_request.field_violations:
        status.details.add().Pack(bad_request)
    if retry_delay_s is not None:
        delay = duration_pb2.Duration()
        delay.FromMilliseconds(int(retry_delay_s * 1000))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    rich = rpc_status.to_status(status)
    kept = tuple(_trailing_metadata(context))
    context.set_trailing_metadata(kept + tuple(rich.trailing_metadata))
    context.abort(rich.code, rich.details)
    raise AssertionError("context.abort returned")  # grpc raises; this keeps the NoReturn promise honest


def _trailing_metadata(context: grpc.ServicerContext) -> Iterable[tuple[str, str]]:
    """What the call has set so far: grpc's own context can say, the abstract one (grpc_testing's) cannot."""
    try:
        existing = context.trailing_metadata()
    except (AttributeError, NotImplementedError):
        return ()
    return [(k, v) for k, v in existing or () if k != rpc_status.GRPC_DETAILS_METADATA_KEY]


def invalid_field(context: grpc.ServicerContext, field: str, problem: str, reason: str = INVALID_REQUEST) -> NoReturn:
    """INVALID_ARGUMENT for one request field: the message reads '<field>: <problem>'."""
    abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
        f"{field}: {problem}",
        metadata={"field": field},
        violations=[(field, problem)],
    )


def invalid_document(context: grpc.ServicerContext, problems: list[Problem], summary: str) -> NoReturn:
    """INVALID_ARGUMENT for a document that does not compile: one FieldViolation per problem, field = its path."""
    abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        DOCUMENT_INVALID,
        summary,
        metadata={"problems": len(problems)},
        violations=[(problem.path or "content", str(problem)) for problem in problems],
    )


def store_failure(context: grpc.ServicerContext, err: StoreError) -> NoReturn:
    """Maps a store exception to the status a caller can act on."""
    kind, name = getattr(err, "kind", None), getattr(err, "name", None)
    where = {"kind": kind, "name": name}
    if isinstance(err, NotFound):
        abort(context, grpc.StatusCode.NOT_FOUND, DOCUMENT_NOT_FOUND, str(err), metadata=where)
    if isinstance(err, VersionConflict):
        where |= {"expected_version": getattr(err, "expected", None), "actual_version": getattr(err, "actual", None)}
        abort(context, grpc.StatusCode.ABORTED, VERSION_CONFLICT, str(err), metadata=where)
    if isinstance(err, ReadOnlyStore):
        abort(context, grpc.StatusCode.FAILED_PRECONDITION, READ_ONLY_STORE, str(err), metadata=where)
    if isinstance(err, StoreFull):
        abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, STORE_FULL, str(err), metadata=where)
    if isinstance(err, DocumentTooLarge):
        abort(
            context,
            grpc.StatusCode.INVALID_ARGUMENT,
            DOCUMENT_TOO_LARGE,
            f"content: {err}",
            metadata=where | {"size": getattr(err, "size", None), "limit": getattr(err, "limit", None)},
            violations=[("content", str(err))],
        )
    abort(
        context,
        grpc.StatusCode.UNAVAILABLE,
        STORE_UNAVAILABLE,
        f"the store failed: {err}",
        metadata=where,
        retry_delay_s=STORE_RETRY_DELAY_S,
    )


def rule_failure(
    context: grpc.ServicerContext, rule_set: str, version: int, *, code: str, message: str, **position: object
) -> NoReturn:
    """A rule set with on_error: fail whose rule failed: FAILED_PRECONDITION, SCRIPT_TIMEOUT for its time budget."""
    rule_id = position.get("rule_id")
    where = f"rule '{rule_id}'" if rule_id else "rule set"
    abort(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        SCRIPT_TIMEOUT if code == QL_TIMEOUT_CODE else RULE_FAILED,
        f"rule set '{rule_set}' failed ({where}, on_error: fail): [{code}] {message}",
        metadata={"rule_set": rule_set, "version": version, "ql_code": code, **position},
    )

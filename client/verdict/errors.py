"""Exceptions of the SDK: every failed call raises a VerdictError subclass chosen by its gRPC status code.

Catch the subclass you can act on (`Conflict`: re-read and retry the write; `NotFound`; `InvalidArgument`: fix the
request; `RuleFailed` / `ScriptTimeout`: the rule set itself fails), or `VerdictError` for all of them. The server's
machine-readable details (google.rpc.Status in the `grpc-status-details-bin` trailer) are exposed as fields:
`reason` (stable, see docs/errors.md), `metadata`, `field_violations` and `retry_delay`. The original
grpc.RpcError is chained as `__cause__`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of the request, or one problem of a document (`field` is then its path, e.g. rules[2].when)."""

    field: str
    description: str


class VerdictError(Exception):
    """A call failed. `code` is the grpc.StatusCode, `message` the server's explanation, `reason` the stable
    ErrorInfo reason ("" when the server sent none), `metadata` what it names (rule_set, version, rule_id, ql_code,
    line, column, kind, name, ...), `retry_delay` the seconds the server asks a retry to wait (None: no advice)."""

    code: grpc.StatusCode

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: list[FieldViolation] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}
        self.field_violations = field_violations or []
        self.retry_delay = retry_delay

    @property
    def rule_id(self) -> str:
        return self.metadata.get("rule_id", "")

    @property
    def ql_code(self) -> str:
        """The QLExpress error code (INVALID_BINARY_OPERAND, SCRIPT_TIME_OUT, ...) when QL failed."""
        return self.metadata.get("ql_code", "")

    @property
    def line(self) -> int:
        return int(self.metadata.get("line", 0))

    @property
    def column(self) -> int:
        return int(self.metadata.get("column", 0))


class NotFound(VerdictError):
    """NOT_FOUND: no such rule set, document or version."""


class InvalidArgument(VerdictError):
    """INVALID_ARGUMENT: bad facts, a bad document (the message has line and column), a bad request."""


class Conflict(VerdictError):
    """ABORTED: a stale write (`expected_version` was not the head). Nothing was written; re-read and retry."""


class Unauthenticated(VerdictError):
    """UNAUTHENTICATED: an admin call without a bearer token."""


class PermissionDenied(VerdictError):
    """PERMISSION_DENIED: the token is not valid for this call."""


class Unavailable(VerdictError):
    """UNAVAILABLE: the server could not be reached or is shutting down (idempotent calls were retried already)."""


class DeadlineExceeded(VerdictError):
    """DEADLINE_EXCEEDED: no answer within the call's timeout."""


class ResourceExhausted(VerdictError):
    """RESOURCE_EXHAUSTED: the server is at its concurrency limit, or a message or document is too large."""


class FailedPrecondition(VerdictError):
    """FAILED_PRECONDITION: the call cannot work in the server's state, e.g. a write to a read-only store."""


class RuleFailed(FailedPrecondition):
    """A rule of a rule set with `on_error: fail` failed (reason RULE_FAILED): retrying gives the same answer."""


class ScriptTimeout(RuleFailed):
    """The rule set broke its own time budget (`timeout_ms`; reason SCRIPT_TIMEOUT). Not the call's deadline."""


class DocumentInvalid(InvalidArgument):
    """A document that does not compile (reason DOCUMENT_INVALID): `field_violations` holds every problem, its
    `field` the path in the document and `description` the problem with its line and column."""


_BY_CODE: dict[grpc.StatusCode, type[VerdictError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
}


_BY_REASON: dict[str, type[VerdictError]] = {
    "RULE_FAILED": RuleFailed,
    "SCRIPT_TIMEOUT": ScriptTimeout,
    "DOCUMENT_INVALID": DocumentInvalid,
}


def from_rpc_error(error: grpc.RpcError) -> VerdictError:
    """The VerdictError for a failed call (any other status code gives a plain VerdictError)."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else None
    found = _details(error)
    reason = found.get("reason", "")
    kind = _BY_REASON.get(reason)
    if kind is None or not issubclass(kind, _BY_CODE.get(code, VerdictError)):
        kind = _BY_CODE.get(code, VerdictError)
    return kind(code, details or code.name.lower().replace("_", " "), **found)


def _details(error: grpc.RpcError) -> dict[str, Any]:
    """ErrorInfo, BadRequest and RetryInfo from the status details trailer, as VerdictError's keyword arguments."""
    reader = getattr(error, "trailing_metadata", None)
    trailer = reader() if callable(reader) else None
    raw = next((value for key, value in trailer or () if key == DETAILS_KEY), None)
    if not isinstance(raw, bytes):
        return {}
    try:
        status = status_pb2.Status.FromString(raw)
    except Exception:  # a malformed trailer from a proxy must not hide the status code itself
        return {}
    found: dict[str, Any] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found["reason"] = info.reason
            found["metadata"] = dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found["field_violations"] = [FieldViolation(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            found["retry_delay"] = retry.retry_delay.ToTimedelta().total_seconds()
    return found

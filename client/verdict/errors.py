"""Exceptions of the SDK: every failed call raises a VerdictError subclass chosen by its gRPC status code.

Catch the subclass you can act on (`Conflict`: re-read and retry the write; `NotFound`; `InvalidArgument`: fix the
request), or `VerdictError` for all of them. The original grpc.RpcError is chained as `__cause__`.
"""

from __future__ import annotations

import grpc


class VerdictError(Exception):
    """A call failed. `code` is the grpc.StatusCode, `message` the server's explanation."""

    code: grpc.StatusCode

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


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


def from_rpc_error(error: grpc.RpcError) -> VerdictError:
    """The VerdictError for a failed call (any other status code gives a plain VerdictError)."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else None
    return _BY_CODE.get(code, VerdictError)(code, details or code.name.lower().replace("_", " "))

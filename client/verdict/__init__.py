"""Verdict's Python client: evaluate rule sets, route MQ messages and manage documents of a Verdict server.

```python
import verdict

with verdict.Client("127.0.0.1:50051") as client:
    answer = client.evaluate("pharmacist.otc_block", {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
    print(answer.result, answer.matched_rules, answer.decision_id)
```

`verdict.AsyncClient` has the same methods for asyncio. Plain Python values go in and come out; failed calls raise
`verdict.VerdictError` subclasses. The generated messages and stubs are in `verdict.v1`. This package imports
nothing from the server.
"""

from . import v1
from .aio import AsyncClient
from .client import Client
from .errors import (
    Conflict,
    DeadlineExceeded,
    DocumentInvalid,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RuleFailed,
    ScriptTimeout,
    Unauthenticated,
    Unavailable,
    VerdictError,
)
from .v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc  # noqa: F401  (makes verdict.v1.* attributes)
from .values import (
    Destination,
    Document,
    DocumentProblem,
    DocumentVersion,
    EvalError,
    Evaluation,
    Routing,
    RuleTrace,
    Skipped,
    Validation,
    from_struct,
    from_value,
    to_struct,
    to_value,
)

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "DeadlineExceeded",
    "Destination",
    "Document",
    "DocumentInvalid",
    "DocumentProblem",
    "DocumentVersion",
    "EvalError",
    "Evaluation",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Routing",
    "RuleFailed",
    "RuleTrace",
    "ScriptTimeout",
    "Skipped",
    "Unauthenticated",
    "Unavailable",
    "Validation",
    "VerdictError",
    "from_struct",
    "from_value",
    "to_struct",
    "to_value",
    "v1",
]

"""QL: Verdict's QLExpress-4-compatible rule language, compiled to Python code objects.

    from verdict_server import ql
    engine = ql.Engine(stdlib=True)
    program = engine.compile("age >= 18 && city in ['Beijing', 'Shanghai']")
    program.run({"age": 30, "city": "Beijing"})   # True

See docs/ql.md (language and API), docs/ql-stdlib.md and docs/ql-compat.md (differences from QLExpress).
"""

from . import errors
from .engine import Engine, Program, program_bytes
from .errors import QLError, QLMemoryError, QLRuntimeError, QLSyntaxError, QLThrow, QLTimeoutError

__all__ = [
    "Engine",
    "Program",
    "QLError",
    "QLMemoryError",
    "QLRuntimeError",
    "QLSyntaxError",
    "QLThrow",
    "QLTimeoutError",
    "errors",
    "program_bytes",
]

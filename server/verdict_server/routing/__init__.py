"""Route tables: which downstream systems an MQ message is forwarded to, and why every other candidate is skipped.

Imports only `..ql` and `..document`; the service layer builds a RouteIndex per snapshot and calls `route`.
"""

from .body import BodyError, parse_json_body
from .inbound import MAX_TOPIC_LENGTH, InvalidMessage, inbound_message, raw_body
from .route import (
    CONDITION_FALSE,
    ERROR,
    GRAY_EXCLUDED,
    NOT_FIRST,
    NOT_SELECTED,
    TAG_MISMATCH,
    Destination,
    Message,
    RouteIndex,
    RouteOutcome,
    Skipped,
)
from .selection import SystemNotFound, edit_selection, set_selection
from .table import CompiledRouteTable, CompiledSystem, compile_route_table

__all__ = [
    "CONDITION_FALSE",
    "MAX_TOPIC_LENGTH",
    "ERROR",
    "GRAY_EXCLUDED",
    "NOT_FIRST",
    "NOT_SELECTED",
    "TAG_MISMATCH",
    "BodyError",
    "CompiledRouteTable",
    "CompiledSystem",
    "Destination",
    "InvalidMessage",
    "Message",
    "RouteIndex",
    "RouteOutcome",
    "Skipped",
    "SystemNotFound",
    "compile_route_table",
    "inbound_message",
    "parse_json_body",
    "edit_selection",
    "raw_body",
    "set_selection",
]

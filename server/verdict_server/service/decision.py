"""DecisionService: Evaluate, EvaluateBatch and Route.

The hot path reads the snapshot once, converts only the facts the rule set can read, runs compiled code and fills
the response message in place. Every caller mistake becomes INVALID_ARGUMENT or NOT_FOUND with a message naming the
field; nothing a caller sends reaches Python internals or ends as INTERNAL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from verdict.v1 import decision_pb2, decision_pb2_grpc

from .. import ql
from ..routing import (
    CONDITION_FALSE,
    ERROR,
    GRAY_EXCLUDED,
    NOT_FIRST,
    NOT_SELECTED,
    TAG_MISMATCH,
    BodyError,
    InvalidMessage,
    RouteOutcome,
    inbound_message,
    raw_body,
)
from ..rules import BatchStopped, Decision, EvalFailure, RuleSetFailure
from ..rules.values import NotPlain, plain
from ..store import NotFound
from . import errors
from .catalog import Catalog
from .facts import (
    FactsError,
    parse_facts_json,
    parse_facts_json_list,
    select_facts,
    struct_to_dict,
    to_json,
    to_value,
)
from .ids import DecisionIds
from .observe import Observer

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
ADHOC_TIMEOUT_MS = 50
MAX_EXPRESSION_CHARS = 64 * 1024  # compiling is not budgeted like running: keep what one call can ask for small
MAX_BATCH_MS = 10_000  # one EvaluateBatch ends at its caller's deadline or after this long, whichever comes first
# Ad-hoc expressions compile into an engine of their own, so that callers sending new texts cannot push the rule
# sets' programs out of the main compile cache, nor keep more than this much memory in compiled expressions.
ADHOC_CACHE_ENTRIES = 256
ADHOC_CACHE_BYTES = 16 * 1024 * 1024


class DecisionServicer(decision_pb2_grpc.DecisionServiceServicer):
    def __init__(
        self,
        catalog: Catalog,
        engine: ql.Engine,
        *,
        allow_adhoc: bool = False,
        observer: Observer | None = None,
        max_batch_ms: int = MAX_BATCH_MS,
    ) -> None:
        """`engine` compiles ad-hoc expressions only (rule sets come compiled from the catalog): give it a small
        cache of its own, see adhoc_engine()."""
        self._catalog = catalog
        self._engine = engine
        self._max_batch_ms = max_batch_ms
        self._allow_adhoc = allow_adhoc
        self._ids = DecisionIds()
        self._observer = observer or Observer()

    # Evaluate -------------------------------------------------------------------------------------------------

    def Evaluate(
        self, request: decision_pb2.EvaluateRequest, context: grpc.ServicerContext
    ) -> decision_pb2.EvaluateResponse:
        if request.expression:
            return self._evaluate_expression(request, context)
        rule_set = self._find_rule_set(request.rule_set, request.version, context)
        source = request.facts_json or request.facts
        facts = self._facts(source, rule_set.free_variables, context)
        decision = self._decide(rule_set, facts, request.explain, context)
        response = decision_pb2.EvaluateResponse(
            rule_set=rule_set.name, version=rule_set.version, decision_id=self._ids.next()
        )
        self._fill(response, decision, context, request.result_format == decision_pb2.RESULT_FORMAT_JSON)
        self._observer.decided(rule_set, decision, source, response.decision_id)
        return response

    def EvaluateBatch(
        self, request: decision_pb2.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> decision_pb2.EvaluateBatchResponse:
        if request.facts_json and len(request.facts):
            errors.invalid_field(context, "facts_json", "give facts or facts_json, not both")
        rule_set = self._find_rule_set(request.rule_set, request.version, context)
        names = rule_set.free_variables
        if request.facts_json:
            batch = self._facts_list_json(request.facts_json, names, context)
            sources: Sequence[Any] = batch  # the log shows what the rules read: the full text is not kept
        else:
            _check_batch_size(len(request.facts), "facts", context)
            batch = [self._facts(facts, names, context, index) for index, facts in enumerate(request.facts)]
            sources = request.facts
        decisions = self._decide_many(rule_set, batch, request.explain, context, self._max_batch_ms)
        response = decision_pb2.EvaluateBatchResponse()
        ids = [self._ids.next() for _ in decisions]
        as_json = request.result_format == decision_pb2.RESULT_FORMAT_JSON
        for decision, decision_id in zip(decisions, ids, strict=True):
            item = response.results.add(rule_set=rule_set.name, version=rule_set.version, decision_id=decision_id)
            self._fill(item, decision, context, as_json)
        self._observer.decided_many(rule_set, decisions, sources, ids)
        return response

    def _find_rule_set(self, name: str, version: int, context: grpc.ServicerContext):
        if not name:
            errors.invalid_field(context, "rule_set", "required (or an ad-hoc expression)")
        if version < 0:
            errors.invalid_field(context, "version", f"must be 0 (active) or a version number, got {version}")
        try:
            return self._catalog.rule_set(name, version)
        except NotFound as err:
            errors.abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                errors.RULE_SET_NOT_FOUND,
                str(err),
                metadata={"rule_set": name, "version": version or None},
            )

    @staticmethod
    def _facts(
        source, names: frozenset[str], context: grpc.ServicerContext, index: int | None = None
    ) -> dict[str, Any]:
        """The facts the rules read, from a Struct or (a str) the facts_json text."""
        try:
            if type(source) is str:
                return parse_facts_json(source, names)
            return select_facts(source, names)
        except FactsError as err:
            if type(source) is str:
                _bad_facts(context, "facts_json", str(err))
            where = f"facts[{index}]" if index is not None else "facts"
            _bad_facts(context, where, f"{where}: {err}")

    @staticmethod
    def _facts_list_json(text: str, names: frozenset[str], context: grpc.ServicerContext) -> list[dict[str, Any]]:
        try:
            batch = parse_facts_json_list(text, names)
        except FactsError as err:
            _bad_facts(context, "facts_json", str(err))
        _check_batch_size(len(batch), "facts_json", context)
        return batch

    @staticmethod
    def _decide(rule_set, facts: dict[str, Any], explain: bool, context: grpc.ServicerContext) -> Decision:
        try:
            return rule_set.evaluate(facts, explain)
        except RuleSetFailure as err:
            _abort_failure(context, rule_set, err.failure)

    @staticmethod
    def _decide_many(
        rule_set, batch: list[dict[str, Any]], explain: bool, context: grpc.ServicerContext, max_batch_ms: int
    ) -> list[Decision]:
        """The whole batch ends at the caller's deadline, or after max_batch_ms, or when the caller cancels."""
        remaining = context.time_remaining()
        callers = remaining is not None and remaining * 1000 <= max_batch_ms
        until = time.monotonic() + (remaining if callers else max_batch_ms / 1000)
        try:
            return rule_set.evaluate_many(batch, explain, until, cancelled=lambda: not context.is_active())
        except RuleSetFailure as err:
            _abort_failure(context, rule_set, err.failure)
        except BatchStopped as err:
            _abort_batch(context, rule_set, err, callers, max_batch_ms)

    @staticmethod
    def _fill(
        response: decision_pb2.EvaluateResponse, decision: Decision, context: grpc.ServicerContext, as_json: bool
    ) -> None:
        try:
            if as_json:
                response.result_json = to_json(decision.result)
            else:
                to_value(decision.result, response.result)
        except FactsError as err:
            errors.abort(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                errors.RESULT_NOT_RETURNABLE,
                f"rule set result cannot be returned: {err}",
                metadata={"rule_set": response.rule_set, "version": response.version},
            )
        if decision.matched_rules:
            response.matched_rules.extend(decision.matched_rules)
        if decision.defaulted:
            response.defaulted = True
        if decision.degraded:
            response.degraded = True
        if decision.error is not None:
            _fill_error(response.error, decision.error)
        for entry in decision.trace:
            trace = response.trace.add(
                rule_id=entry.rule_id, evaluated=entry.evaluated, matched=entry.matched, note=entry.note or ""
            )
            if entry.evaluated and entry.error is None:
                _fill_plain(entry.condition, trace.condition)
            if entry.error is not None:
                _fill_error(trace.error, entry.error)

    def _evaluate_expression(self, request, context: grpc.ServicerContext) -> decision_pb2.EvaluateResponse:
        if not self._allow_adhoc:
            errors.abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                errors.ADHOC_DISABLED,
                "expression: ad-hoc expressions are disabled on this server (start it with --allow-adhoc)",
            )
        if request.rule_set:
            errors.invalid_field(context, "expression", "give either rule_set or expression, not both")
        if len(request.expression) > MAX_EXPRESSION_CHARS:
            errors.invalid_field(
                context, "expression", f"at most {MAX_EXPRESSION_CHARS} characters, got {len(request.expression)}"
            )
        try:
            program = self._engine.compile(request.expression)
        except ql.QLError as err:
            _expression_error(context, errors.EXPRESSION_INVALID, err)
        facts = self._facts(request.facts_json or request.facts, program.free_variables, context)
        response = decision_pb2.EvaluateResponse(decision_id=self._ids.next())
        try:
            value = program.run(facts, timeout_ms=ADHOC_TIMEOUT_MS)
        except ql.QLTimeoutError as err:
            errors.abort(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                errors.SCRIPT_TIMEOUT,
                f"expression: {err}",
                metadata={"ql_code": err.code, "timeout_ms": ADHOC_TIMEOUT_MS},
            )
        except ql.QLError as err:
            _expression_error(context, errors.EXPRESSION_FAILED, err)
        try:
            value = plain(value)  # bounded: a value sharing its parts is refused, not converted
            if request.result_format == decision_pb2.RESULT_FORMAT_JSON:
                response.result_json = to_json(value)
            else:
                to_value(value, response.result)
        except (FactsError, NotPlain) as err:
            errors.invalid_field(context, "expression", str(err), errors.RESULT_NOT_RETURNABLE)
        return response

    # Route ----------------------------------------------------------------------------------------------------

    def Route(self, request: decision_pb2.RouteRequest, context: grpc.ServicerContext) -> decision_pb2.RouteResponse:
        try:
            message = inbound_message(
                request.topic, request.tags, request.key, request.properties, _body_loader(request)
            )
        except InvalidMessage as err:
            errors.invalid_field(context, err.field, err.problem)
        snapshot = self._catalog.snapshot
        outcome = snapshot.route_index.route(message)
        response = decision_pb2.RouteResponse(decision_id=self._ids.next())
        _fill_route(response, outcome)
        self._observer.routed(request, outcome, response.decision_id)
        return response


def _body_loader(request: decision_pb2.RouteRequest) -> Callable[[], Any]:
    """What the router calls (at most once, and only when a condition reads `body`) to get the parsed body."""
    payload = request.WhichOneof("payload")
    if payload == "body_json":
        struct = request.body_json

        def load_struct() -> Any:
            try:
                return struct_to_dict(struct)
            except FactsError as err:
                raise BodyError(f"body_json: {err}") from None

        return load_struct
    if payload == "body":
        return raw_body(request.body, request.content_type)
    return lambda: None


def _fill_route(response: decision_pb2.RouteResponse, outcome: RouteOutcome) -> None:
    for d in outcome.destinations:
        response.destinations.add(
            system=d.system, target=d.target, priority=d.priority, table=d.table, version=d.version
        )
    for s in outcome.skipped:
        response.skipped.add(
            system=s.system,
            table=s.table,
            version=s.version,
            reason=_SKIP_REASONS[s.reason],
            detail=s.detail,
        )


def _fill_error(out: decision_pb2.EvalError, failure: EvalFailure) -> None:
    out.code = failure.code
    out.message = failure.message
    out.rule_id = failure.rule_id or ""
    out.line = failure.line or 0
    out.column = failure.column or 0


def _fill_plain(value: Any, out) -> None:
    """A trace value is informative only: one that is not JSON-like is shown as its text instead of failing."""
    try:
        to_value(value, out)
    except FactsError:
        out.string_value = str(value)


def _abort_failure(context: grpc.ServicerContext, rule_set: Any, failure: EvalFailure) -> None:
    errors.rule_failure(
        context,
        rule_set.name,
        rule_set.version,
        code=failure.code,
        message=failure.message,
        rule_id=failure.rule_id or None,
        line=failure.line or None,
        column=failure.column or None,
    )


def _abort_batch(
    context: grpc.ServicerContext, rule_set: Any, stopped: BatchStopped, callers: bool, max_batch_ms: int
) -> None:
    """DEADLINE_EXCEEDED only for the caller's own deadline (or a cancel, which nobody hears); the server's maximum
    is FAILED_PRECONDITION: the same batch would stop again, a smaller one would not."""
    metadata = {"rule_set": rule_set.name, "version": rule_set.version}
    if not context.is_active():
        errors.abort(context, grpc.StatusCode.CANCELLED, errors.BATCH_STOPPED, f"EvaluateBatch stopped: {stopped}")
    if callers:
        errors.abort(
            context, grpc.StatusCode.DEADLINE_EXCEEDED, errors.BATCH_STOPPED, f"EvaluateBatch stopped: {stopped}"
        )
    errors.abort(
        context,
        grpc.StatusCode.FAILED_PRECONDITION,
        errors.BATCH_STOPPED,
        f"EvaluateBatch stopped: {stopped} (the server's maximum of {max_batch_ms} ms; send smaller batches)",
        metadata={**metadata, "max_batch_ms": max_batch_ms},
    )


def adhoc_engine(max_memory_bytes: int | None = None) -> ql.Engine:
    """The engine ad-hoc expressions compile into: the standard library, a small cache of its own."""
    return ql.Engine(
        stdlib=True, cache_size=ADHOC_CACHE_ENTRIES, cache_bytes=ADHOC_CACHE_BYTES, max_memory_bytes=max_memory_bytes
    )


def _bad_facts(context: grpc.ServicerContext, field: str, message: str) -> None:
    errors.abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        errors.FACTS_INVALID,
        message,
        metadata={"field": field},
        violations=[(field, message)],
    )


def _check_batch_size(count: int, field: str, context: grpc.ServicerContext) -> None:
    if count > MAX_BATCH:
        errors.invalid_field(context, field, f"at most {MAX_BATCH} entries per batch, got {count}")


def _expression_error(context: grpc.ServicerContext, reason: str, err: ql.QLError) -> None:
    errors.abort(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
        f"expression: {err}",
        metadata={"ql_code": err.code, "line": err.line, "column": err.column},
        violations=[("expression", str(err))],
    )


# The domain's reason names (routing.route) as the contract's prefixed enum values.
_SKIP_REASONS = {
    name: decision_pb2.SkipReason.Value(f"SKIP_REASON_{name}")
    for name in (NOT_SELECTED, TAG_MISMATCH, CONDITION_FALSE, GRAY_EXCLUDED, ERROR, NOT_FIRST)
}

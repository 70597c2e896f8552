"""DecisionService: Evaluate, EvaluateBatch and Route.

The hot path reads the snapshot once, converts only the facts the rule set can read, runs compiled code and fills
the response message in place. Every caller mistake becomes INVALID_ARGUMENT or NOT_FOUND with a message naming the
field; nothing a caller sends reaches Python internals or ends as INTERNAL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import grpc

from verdict.v1 import decision_pb2, decision_pb2_grpc

from .. import ql
from ..routing import BodyError, Message, RouteOutcome, parse_json_body
from ..rules import BatchStopped, Decision, EvalFailure, RuleSetFailure
from ..rules.values import NotPlain, plain
from ..store import NotFound
from .catalog import Catalog
from .facts import FactsError, select_facts, struct_to_dict, to_value
from .ids import DecisionIds
from .observe import Observer

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
MAX_TOPIC_LENGTH = 1024
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
        facts = self._facts(request.facts, rule_set.free_variables, context)
        decision = self._decide(rule_set, facts, request.explain, context)
        response = decision_pb2.EvaluateResponse(
            rule_set=rule_set.name, version=rule_set.version, decision_id=self._ids.next()
        )
        self._fill(response, decision, context)
        self._observer.decided(rule_set, decision, request.facts, response.decision_id)
        return response

    def EvaluateBatch(
        self, request: decision_pb2.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> decision_pb2.EvaluateBatchResponse:
        if len(request.facts) > MAX_BATCH:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"facts: at most {MAX_BATCH} entries per batch, got {len(request.facts)}",
            )
        rule_set = self._find_rule_set(request.rule_set, request.version, context)
        names = rule_set.free_variables
        batch = [self._facts(facts, names, context, index) for index, facts in enumerate(request.facts)]
        decisions = self._decide_many(rule_set, batch, request.explain, context, self._batch_deadline(context))
        response = decision_pb2.EvaluateBatchResponse()
        ids = [self._ids.next() for _ in decisions]
        for decision, decision_id in zip(decisions, ids, strict=True):
            item = response.results.add(rule_set=rule_set.name, version=rule_set.version, decision_id=decision_id)
            self._fill(item, decision, context)
        self._observer.decided_many(rule_set, decisions, request.facts, ids)
        return response

    def _batch_deadline(self, context: grpc.ServicerContext) -> float:
        """The time.monotonic() at which the whole batch stops: the caller's deadline or the server's maximum."""
        limit_s = self._max_batch_ms / 1000
        remaining = context.time_remaining()
        if remaining is not None:
            limit_s = min(limit_s, remaining)
        return time.monotonic() + limit_s

    def _find_rule_set(self, name: str, version: int, context: grpc.ServicerContext):
        if not name:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "rule_set: required (or an ad-hoc expression)")
        if version < 0:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"version: must be 0 (active) or a version number, got {version}"
            )
        try:
            return self._catalog.rule_set(name, version)
        except NotFound as err:
            context.abort(grpc.StatusCode.NOT_FOUND, str(err))

    @staticmethod
    def _facts(
        struct, names: frozenset[str], context: grpc.ServicerContext, index: int | None = None
    ) -> dict[str, Any]:
        try:
            return select_facts(struct, names)
        except FactsError as err:
            where = f"facts[{index}]" if index is not None else "facts"
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {err}")

    @staticmethod
    def _decide(rule_set, facts: dict[str, Any], explain: bool, context: grpc.ServicerContext) -> Decision:
        try:
            return rule_set.evaluate(facts, explain)
        except RuleSetFailure as err:
            _abort_failure(context, rule_set.name, err.failure)

    @staticmethod
    def _decide_many(
        rule_set, batch: list[dict[str, Any]], explain: bool, context: grpc.ServicerContext, until: float
    ) -> list[Decision]:
        try:
            return rule_set.evaluate_many(batch, explain, until, cancelled=lambda: not context.is_active())
        except RuleSetFailure as err:
            _abort_failure(context, rule_set.name, err.failure)
        except BatchStopped as err:
            status = grpc.StatusCode.DEADLINE_EXCEEDED if context.is_active() else grpc.StatusCode.CANCELLED
            context.abort(status, f"EvaluateBatch stopped: {err}")

    @staticmethod
    def _fill(response: decision_pb2.EvaluateResponse, decision: Decision, context: grpc.ServicerContext) -> None:
        try:
            to_value(decision.result, response.result)
        except FactsError as err:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"rule set result cannot be returned: {err}")
        if decision.matched_rules:
            response.matched_rules.extend(decision.matched_rules)
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
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                "expression: ad-hoc expressions are disabled on this server (start it with --allow-adhoc)",
            )
        if request.rule_set:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give either rule_set or expression, not both")
        if len(request.expression) > MAX_EXPRESSION_CHARS:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"expression: at most {MAX_EXPRESSION_CHARS} characters, got {len(request.expression)}",
            )
        try:
            program = self._engine.compile(request.expression)
        except ql.QLError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expression: {err}")
        facts = self._facts(request.facts, program.free_variables, context)
        response = decision_pb2.EvaluateResponse(decision_id=self._ids.next())
        try:
            value = program.run(facts, timeout_ms=ADHOC_TIMEOUT_MS)
        except ql.QLTimeoutError as err:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"expression: {err}")
        except ql.QLMemoryError as err:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"expression: {err}")
        except ql.QLError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expression: {err}")
        try:
            to_value(plain(value), response.result)
        except (FactsError, NotPlain) as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expression: {err}")
        return response

    # Route ----------------------------------------------------------------------------------------------------

    def Route(self, request: decision_pb2.RouteRequest, context: grpc.ServicerContext) -> decision_pb2.RouteResponse:
        topic = request.topic
        if not topic or len(topic) > MAX_TOPIC_LENGTH or "" in topic.split("."):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"topic: must be 1-{MAX_TOPIC_LENGTH} characters of '.'-separated non-empty words, got {topic!r}",
            )
        message = Message(
            topic=topic,
            tags=tuple(request.tags),
            key=request.key,
            properties=dict(request.properties),
            body=_body_loader(request),
        )
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
        raw, content_type = request.body, request.content_type
        return lambda: parse_json_body(raw, content_type)
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
            reason=decision_pb2.SkipReason.Value(s.reason),
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


_FAILURE_STATUS = {
    ql.errors.SCRIPT_TIME_OUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ql.errors.SCRIPT_OUT_OF_MEMORY: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def adhoc_engine(max_memory_bytes: int | None = None) -> ql.Engine:
    """The engine ad-hoc expressions compile into: the standard library, a small cache of its own."""
    return ql.Engine(
        stdlib=True, cache_size=ADHOC_CACHE_ENTRIES, cache_bytes=ADHOC_CACHE_BYTES, max_memory_bytes=max_memory_bytes
    )


def _abort_failure(context: grpc.ServicerContext, name: str, failure: EvalFailure) -> None:
    where = f"rule '{failure.rule_id}'" if failure.rule_id else "rule set"
    status = _FAILURE_STATUS.get(failure.code, grpc.StatusCode.FAILED_PRECONDITION)
    context.abort(status, f"rule set '{name}' failed ({where}, on_error: fail): [{failure.code}] {failure.message}")

"""The servicers and the catalog in-process, through grpc_testing: the same handlers the server wires, without a
network or a subprocess, so a change to the hot path gets feedback in seconds. The end-to-end tests (tests/e2e)
check the same behaviour through a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest

from verdict.v1 import admin_pb2, decision_pb2
from verdict_server import ql
from verdict_server.service.admin import AdminServicer
from verdict_server.service.auth import TokenCheck
from verdict_server.service.catalog import Catalog
from verdict_server.service.decision import DecisionServicer
from verdict_server.service.seed import seed_examples
from verdict_server.store import SqliteStore

TOKEN = "in-process-token-0123456789"
ADMIN = (("authorization", f"Bearer {TOKEN}"),)
DECISION = decision_pb2.DESCRIPTOR.services_by_name["DecisionService"]
ADMIN_SERVICE = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
PHARMACIST = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}


class InProcess:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        servicers = {
            DECISION: DecisionServicer(catalog, catalog.engine, allow_adhoc=True),
            ADMIN_SERVICE: AdminServicer(catalog, TokenCheck(TOKEN)),
        }
        self.server = grpc_testing.server_from_dictionary(servicers, grpc_testing.strict_real_time())

    def call(self, service, method: str, request: Any, metadata=()) -> tuple[Any, Any, grpc.StatusCode, str]:
        rpc = self.server.invoke_unary_unary(service.methods_by_name[method], metadata, request, None)
        return rpc.termination()

    def decide(self, method: str, request: Any):
        return self.call(DECISION, method, request)

    def admin(self, method: str, request: Any):
        return self.call(ADMIN_SERVICE, method, request, ADMIN)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    store = SqliteStore(tmp_path / "verdict.db")
    seed_examples(store)
    made = Catalog(store, ql.Engine(stdlib=True))
    made.reload(force=True)
    yield made
    store.close()


@pytest.fixture
def service(catalog: Catalog) -> InProcess:
    return InProcess(catalog)


def test_evaluate_with_struct_and_with_json_facts_agree(service: InProcess) -> None:
    request = decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block")
    request.facts.update(PHARMACIST)
    by_struct, _, code, _ = service.decide("Evaluate", request)
    by_json, _, _, _ = service.decide(
        "Evaluate", decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts_json=json.dumps(PHARMACIST))
    )
    assert code == grpc.StatusCode.OK
    assert by_struct.result == by_json.result and list(by_json.matched_rules) == ["block-otc"]
    assert not by_json.defaulted


def test_the_default_answer_is_flagged(service: InProcess) -> None:
    answer, _, _, _ = service.decide(
        "Evaluate", decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts_json='{"role": "DOCTOR"}')
    )
    assert answer.defaulted and not answer.matched_rules


def test_an_unknown_rule_set_is_not_found_with_its_reason(service: InProcess) -> None:
    # grpc_testing drops the trailer of an aborted call, so the details are checked end to end (test_contract_v1).
    _, _, code, details = service.decide("Evaluate", decision_pb2.EvaluateRequest(rule_set="nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in details


def test_json_results_are_exact(service: InProcess) -> None:
    answer, _, _, _ = service.decide(
        "Evaluate",
        decision_pb2.EvaluateRequest(
            expression="n * 10", facts_json='{"n": 12345678901234567890}', result_format=decision_pb2.RESULT_FORMAT_JSON
        ),
    )
    assert json.loads(answer.result_json) == 123456789012345678900


def test_route_names_every_skip_reason_with_its_prefix(service: InProcess) -> None:
    request = decision_pb2.RouteRequest(topic="order.status.paid", tags=["PAID"], key="order-42")
    request.body_json.update({"amount": 99.5, "hasRx": True})
    answer, _, code, _ = service.decide("Route", request)
    assert code == grpc.StatusCode.OK
    names = {decision_pb2.SkipReason.Name(s.reason) for s in answer.skipped}
    assert names and all(name.startswith("SKIP_REASON_") for name in names)


def test_a_write_reloads_the_catalog_and_an_equal_write_changes_nothing(service: InProcess) -> None:
    content = "kind: RuleSet\nname: inproc.one\ndefault: 0\nscript: '41 + 1'\n"
    first, _, code, _ = service.admin("PutDocument", admin_pb2.PutDocumentRequest(content=content))
    assert code == grpc.StatusCode.OK and not first.unchanged
    assert service.catalog.snapshot.rule_sets["inproc.one"].version == first.document.version
    again, _, _, _ = service.admin("PutDocument", admin_pb2.PutDocumentRequest(content=content))
    assert again.unchanged and again.document.version == first.document.version


def test_a_bad_document_is_refused_and_the_catalog_keeps_serving(service: InProcess) -> None:
    before = service.catalog.snapshot.generation
    _, _, code, details = service.admin(
        "PutDocument", admin_pb2.PutDocumentRequest(content="kind: RuleSet\nname: inproc.bad\nscript: '1 +'\n")
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "line 3" in details
    assert service.catalog.snapshot.generation == before and "inproc.bad" not in service.catalog.snapshot.rule_sets


def test_admin_calls_need_the_token(service: InProcess) -> None:
    _, _, code, _ = service.call(ADMIN_SERVICE, "ListDocuments", admin_pb2.ListDocumentsRequest())
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_listings_page(service: InProcess) -> None:
    first, _, _, _ = service.admin("ListDocuments", admin_pb2.ListDocumentsRequest(page_size=1))
    assert len(first.documents) == 1 and first.next_page_token
    rest, _, _, _ = service.admin(
        "ListDocuments", admin_pb2.ListDocumentsRequest(page_size=1000, page_token=first.next_page_token)
    )
    keys = [(d.kind, d.name) for d in [*first.documents, *rest.documents]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) and not rest.next_page_token


def test_a_pinned_old_version_is_compiled_once_and_kept(catalog: Catalog, service: InProcess) -> None:
    content = "kind: RuleSet\nname: inproc.pinned\ndefault: 0\nscript: '{v}'\n"
    for v in (1, 2):
        service.admin("PutDocument", admin_pb2.PutDocumentRequest(content=content.format(v=v)))
    old = catalog.rule_set("inproc.pinned", 1)
    assert old.version == 1 and catalog.rule_set("inproc.pinned", 1) is old
    assert catalog.rule_set("inproc.pinned").version == 2

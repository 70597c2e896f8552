"""The Python SDK (`import verdict`) against a real server: plain values in and out, errors, deadlines, async."""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal

import pytest
from harness import ServerProcess

import verdict

PHARMACIST = {"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001}


@pytest.fixture
def client(server: ServerProcess):
    with verdict.Client(server.target, token=server.token) as c:
        yield c


def test_evaluate_returns_plain_python_values(client: verdict.Client) -> None:
    answer = client.evaluate("pharmacist.otc_block", PHARMACIST)
    assert answer.result["action"] == "HIDE"
    assert answer.matched_rules == ["block-otc"] or tuple(answer.matched_rules) == ("block-otc",)
    assert answer.rule_set == "pharmacist.otc_block" and answer.version >= 1 and answer.decision_id
    assert not answer.degraded and answer.error is None


def test_numbers_come_back_as_numbers(client: verdict.Client) -> None:
    assert client.evaluate_expression("a / b", {"a": 1, "b": 4}).result == pytest.approx(0.25)
    assert client.evaluate_expression("n + 1", {"n": 41}).result == 42
    result = client.evaluate_expression("{'xs': [1, 2.5, 'x', null, true]}", {}).result
    assert result == {"xs": [1, 2.5, "x", None, True]}
    assert not isinstance(client.evaluate_expression("1.5 * 2", {}).result, Decimal)


def test_batch_and_explain(client: verdict.Client) -> None:
    answers = client.evaluate_batch("pharmacist.otc_block", [PHARMACIST, {**PHARMACIST, "categoryId": 7}])
    assert [a.result["action"] for a in answers] == ["HIDE", "SHOW"]
    explained = client.evaluate("pharmacist.otc_block", PHARMACIST, explain=True)
    assert any(entry.rule_id == "block-otc" and entry.matched for entry in explained.trace)


def test_errors_are_typed(client: verdict.Client) -> None:
    with pytest.raises(verdict.NotFound) as missing:
        client.evaluate("no.such.rules", {})
    assert "no.such.rules" in str(missing.value)
    with pytest.raises(verdict.InvalidArgument):
        client.evaluate_expression("1 +", {})
    with pytest.raises(verdict.VerdictError):
        client.evaluate("", {})


def test_admin_calls_and_conflicts(client: verdict.Client) -> None:
    content = textwrap.dedent(
        """\
        kind: RuleSet
        name: sdk.flag
        default: "off"
        rules:
          - id: "on"
            when: enabled == true
            then: "on"
        """
    )
    written = client.put_document(content, author="sdk")
    assert written.version == 1 and written.name == "sdk.flag"
    assert client.evaluate("sdk.flag", {"enabled": True}).result == "on"
    with pytest.raises(verdict.Conflict):
        client.put_document(content, expected_version=7)
    assert [d.version for d in client.list_versions("RuleSet", "sdk.flag")] == [1]
    assert client.get_document("RuleSet", "sdk.flag").content == content
    validation = client.validate_document("kind: RuleSet\nname: x\nrules: 5\n")
    assert not validation.valid and validation.problems[0].line == 3


def test_admin_without_a_token_is_refused(server: ServerProcess) -> None:
    with verdict.Client(server.target) as anonymous, pytest.raises((verdict.Unauthenticated, verdict.PermissionDenied)):
        anonymous.list_documents()


def test_route_returns_destinations_and_reasons(client: verdict.Client) -> None:
    answer = client.route("order.status.paid", tags=["PAID"], key="order-42", body={"amount": 99.5})
    systems = {d.system for d in answer.destinations} | {s.system for s in answer.skipped}
    assert "crm" in systems or "settlement" in systems
    assert all(isinstance(s.reason, str) and s.reason for s in answer.skipped)


def test_the_default_deadline_applies(server: ServerProcess) -> None:
    with verdict.Client(server.target, timeout=0.005) as hurried, pytest.raises(verdict.DeadlineExceeded):
        hurried.evaluate_expression("while (true) { }", {})


def test_async_client(server: ServerProcess) -> None:
    async def scenario() -> list:
        async with verdict.AsyncClient(server.target, token=server.token) as client:
            answers = await asyncio.gather(*(client.evaluate("pharmacist.otc_block", PHARMACIST) for _ in range(20)))
            with pytest.raises(verdict.NotFound):
                await client.evaluate("no.such.rules", {})
            return answers

    answers = asyncio.run(scenario())
    assert {a.result["action"] for a in answers} == {"HIDE"}
    assert len({a.decision_id for a in answers}) == 20

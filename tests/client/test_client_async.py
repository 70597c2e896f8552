"""verdict.AsyncClient against the fake servicer: same requests, results, errors and retries as the sync client."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

import verdict
from verdict.v1 import admin_pb2, decision_pb2


def test_evaluate_and_route(target, fake) -> None:
    fake.answers["Evaluate"] = decision_pb2.EvaluateResponse(result=verdict.to_value({"n": 2.0}), decision_id="d")
    fake.answers["Route"] = decision_pb2.RouteResponse(
        skipped=[decision_pb2.Skipped(system="s", reason=decision_pb2.SKIP_REASON_NOT_SELECTED)]
    )

    async def run() -> tuple[list[verdict.Evaluation], verdict.Routing]:
        async with verdict.AsyncClient(target) as client:
            answers = await asyncio.gather(*(client.evaluate("rules", {"i": i}) for i in range(5)))
            return answers, await client.route("t", body={"a": 1})

    answers, routing = asyncio.run(run())
    assert [a.result for a in answers] == [{"n": 2}] * 5
    assert sorted(json.loads(c.request.facts_json)["i"] for c in fake.calls["Evaluate"]) == [0, 1, 2, 3, 4]
    assert routing.skipped[0].reason == "NOT_SELECTED"
    assert fake.calls["Route"][0].request.WhichOneof("payload") == "body_json"


def test_admin_calls_carry_the_token(target, fake) -> None:
    fake.answers["PutDocument"] = admin_pb2.PutDocumentResponse(
        document=admin_pb2.DocumentVersion(kind="RuleSet", name="a", version=1)
    )

    async def run() -> verdict.DocumentVersion:
        async with verdict.AsyncClient(target, token="tok") as client:
            await client.evaluate_batch("rules", [{}])
            return await client.put_document("kind: RuleSet", author="ann")

    assert asyncio.run(run()) == verdict.DocumentVersion("RuleSet", "a", 1)
    assert fake.calls["PutDocument"][0].metadata["authorization"] == "Bearer tok"
    assert "authorization" not in fake.calls["EvaluateBatch"][0].metadata


def test_errors_are_typed_and_writes_are_not_retried(target, fake) -> None:
    fake.fail("GetDocument", grpc.StatusCode.NOT_FOUND, "no such document")
    fake.fail("SetSelection", grpc.StatusCode.UNAVAILABLE)

    async def run() -> None:
        async with verdict.AsyncClient(target) as client:
            with pytest.raises(verdict.NotFound, match="no such document"):
                await client.get_document("RuleSet", "missing")
            with pytest.raises(verdict.Unavailable):
                await client.set_selection("t", "s", True)

    asyncio.run(run())
    assert len(fake.calls["SetSelection"]) == 1


def test_idempotent_calls_are_retried(target, fake) -> None:
    fake.fail("ListVersions", grpc.StatusCode.UNAVAILABLE, times=2)

    async def run() -> list[verdict.Document]:
        async with verdict.AsyncClient(target) as client:
            return await client.list_versions("RuleSet", "a")

    assert asyncio.run(run()) == []
    assert len(fake.calls["ListVersions"]) == 3


def test_deadline(target, fake) -> None:
    fake.answers["Evaluate"] = "block"

    async def run() -> None:
        async with verdict.AsyncClient(target, timeout=0.2) as client:
            await client.evaluate("rules", {})

    with pytest.raises(verdict.DeadlineExceeded):
        asyncio.run(run())

"""A real gRPC server on 127.0.0.1 (port 0) with a fake servicer that records what the SDK sends.

This is the SDK's unit test bench: it checks what goes on the wire and how answers and failures come back, without
the rule engine. The SDK against the real service is tested in tests/e2e.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from verdict.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc


@dataclass
class Received:
    request: Any
    metadata: dict[str, str]


@dataclass
class Fake:
    """Answers every RPC with `answers[method]` (a message, or a function of the request) after failing with the
    status codes queued in `failures[method]`, one per call. Every call is recorded in `calls[method]`."""

    answers: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, list[tuple[grpc.StatusCode, str]]] = field(default_factory=lambda: defaultdict(list))
    calls: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))
    release: threading.Event = field(default_factory=threading.Event)  # a "block" answer waits for this

    def fail(self, method: str, code: grpc.StatusCode, message: str = "", times: int = 1) -> None:
        self.failures[method].extend([(code, message or f"fake {code.name}")] * times)

    def handle(self, method: str, request: Any, context: grpc.ServicerContext, empty: Callable[[], Any]) -> Any:
        self.calls[method].append(Received(request, dict(context.invocation_metadata())))
        if self.failures[method]:
            code, message = self.failures[method].pop(0)
            context.abort(code, message)
        answer = self.answers.get(method)
        if answer == "block":
            self.release.wait(30)
            return empty()
        if callable(answer):
            return answer(request)
        return answer if answer is not None else empty()


class FakeDecision(decision_pb2_grpc.DecisionServiceServicer):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def Evaluate(self, request, context):
        return self.fake.handle("Evaluate", request, context, decision_pb2.EvaluateResponse)

    def EvaluateBatch(self, request, context):
        return self.fake.handle("EvaluateBatch", request, context, decision_pb2.EvaluateBatchResponse)

    def Route(self, request, context):
        return self.fake.handle("Route", request, context, decision_pb2.RouteResponse)


class FakeAdmin(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, fake: Fake) -> None:
        self.fake = fake

    def PutDocument(self, request, context):
        return self.fake.handle("PutDocument", request, context, admin_pb2.PutDocumentResponse)

    def GetDocument(self, request, context):
        return self.fake.handle("GetDocument", request, context, admin_pb2.GetDocumentResponse)

    def ListDocuments(self, request, context):
        return self.fake.handle("ListDocuments", request, context, admin_pb2.ListDocumentsResponse)

    def ListVersions(self, request, context):
        return self.fake.handle("ListVersions", request, context, admin_pb2.ListVersionsResponse)

    def DeleteDocument(self, request, context):
        return self.fake.handle("DeleteDocument", request, context, admin_pb2.DeleteDocumentResponse)

    def ValidateDocument(self, request, context):
        return self.fake.handle("ValidateDocument", request, context, admin_pb2.ValidateDocumentResponse)

    def ActivateVersion(self, request, context):
        return self.fake.handle("ActivateVersion", request, context, admin_pb2.ActivateVersionResponse)

    def SetSelection(self, request, context):
        return self.fake.handle("SetSelection", request, context, admin_pb2.SetSelectionResponse)


@pytest.fixture
def fake() -> Iterator[Fake]:
    made = Fake()
    yield made
    made.release.set()


@pytest.fixture
def target(fake: Fake) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    decision_pb2_grpc.add_DecisionServiceServicer_to_server(FakeDecision(fake), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(FakeAdmin(fake), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    fake.release.set()
    server.stop(grace=None)

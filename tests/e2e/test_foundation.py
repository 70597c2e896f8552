"""The foundation contract, seen from outside: health, reflection (what grpcurl uses), the generated stubs."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.struct_pb2 import Struct
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from harness import ServerProcess

from verdict.v1 import decision_pb2, decision_pb2_grpc

SERVICES = ("verdict.v1.DecisionService", "verdict.v1.AdminService", "grpc.health.v1.Health")


def _reflect(
    channel: grpc.Channel, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    return next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))


@pytest.mark.parametrize("service", ["", *SERVICES[:2]])
def test_health_is_serving_overall_and_per_service(server: ServerProcess, service: str) -> None:
    with server.channel() as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_of_an_unknown_service_is_not_found(server: ServerProcess) -> None:
    with server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_every_service(server: ServerProcess) -> None:
    with server.channel() as channel:
        response = _reflect(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in response.list_services_response.service}
    assert set(SERVICES) <= names


def test_a_dynamic_client_built_from_reflection_alone_can_evaluate(server: ServerProcess) -> None:
    """What grpcurl does: fetch the descriptors from the server, build the messages, call by method name."""
    with server.channel() as channel:
        response = _reflect(
            channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol="verdict.v1.DecisionService")
        )
        pool = descriptor_pool.DescriptorPool()
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in response.file_descriptor_response.file_descriptor_proto
        ]
        _add_in_dependency_order(pool, files)
        service = pool.FindServiceByName("verdict.v1.DecisionService")
        method = service.methods_by_name["Evaluate"]
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        request = request_class(rule_set="pharmacist.otc_block")
        request.facts.update({"scene": "NON_MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
        call = channel.unary_unary(
            f"/{service.full_name}/Evaluate",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        answer = call(request, timeout=10)
    assert answer.rule_set == "pharmacist.otc_block"
    assert answer.version >= 1
    assert answer.decision_id
    assert answer.result.struct_value.fields["action"].string_value == "HIDE"
    assert list(answer.matched_rules) == ["block-otc"]


def _add_in_dependency_order(
    pool: descriptor_pool.DescriptorPool, files: list[descriptor_pb2.FileDescriptorProto]
) -> None:
    pending = {proto.name: proto for proto in files}
    added: set[str] = set()
    while pending:
        ready = [
            proto for proto in pending.values() if all(dep in added or dep not in pending for dep in proto.dependency)
        ]
        assert ready, f"cyclic or missing descriptor dependencies: {sorted(pending)}"
        for proto in ready:
            pool.Add(proto)
            added.add(proto.name)
            del pending[proto.name]


def test_generated_stubs_evaluate_the_seeded_example(server: ServerProcess) -> None:
    facts = Struct()
    facts.update({"scene": "MEDICAL", "role": "PHARMACIST", "categoryId": 1001})
    with server.channel() as channel:
        answer = decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(rule_set="pharmacist.otc_block", facts=facts), timeout=10
        )
    assert answer.result.struct_value.fields["action"].string_value == "SHOW"
    assert "block-otc" not in answer.matched_rules


def test_unknown_rule_set_is_not_found_and_names_it(server: ServerProcess) -> None:
    with server.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        decision_pb2_grpc.DecisionServiceStub(channel).Evaluate(
            decision_pb2.EvaluateRequest(rule_set="no.such"), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no.such" in raised.value.details()


def test_admin_needs_the_bearer_token(server: ServerProcess) -> None:
    from verdict.v1 import admin_pb2, admin_pb2_grpc

    with server.channel() as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            stub.ListDocuments(admin_pb2.ListDocumentsRequest(), timeout=10)
        with pytest.raises(grpc.RpcError) as wrong:
            stub.ListDocuments(
                admin_pb2.ListDocumentsRequest(), timeout=10, metadata=(("authorization", "Bearer nope"),)
            )
        listed = stub.ListDocuments(admin_pb2.ListDocumentsRequest(), timeout=10, metadata=server.admin_metadata())
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert wrong.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "pharmacist.otc_block" in {document.name for document in listed.documents}


def test_the_admin_token_file_is_private(server: ServerProcess) -> None:
    assert server.token_path is not None
    assert server.token_path.stat().st_mode & 0o077 == 0

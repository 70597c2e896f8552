"""Server reflection, as grpc.reflection.v1 and v1alpha.

grpcio-reflection serves only v1alpha, while current tools (grpcurl, buf curl, Postman, grpc-java's
ProtoReflectionService clients) ask for v1 first. The two protocols are the same messages under another package
name, so v1 is served by the same servicer with v1alpha's message classes, and a copy of v1alpha's file descriptor
renamed to grpc.reflection.v1 goes into the pool so that `describe` works on it too.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA_PACKAGE = "grpc.reflection.v1alpha"
V1_PACKAGE = "grpc.reflection.v1"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE = reflection.SERVICE_NAME


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serves reflection v1 and v1alpha for service_names (and for the reflection services themselves)."""
    _register_v1_descriptor()
    names = (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.ReflectionServicer(service_names=names)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE, {"ServerReflectionInfo": method}),)
    )


def _register_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1_SERVICE)
        return  # registered already (a second server in this process, or a library that ships v1)
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = V1_PACKAGE
    old, new = f".{V1ALPHA_PACKAGE}.", f".{V1_PACKAGE}."
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # only message and enum fields name a type; setting "" would add one
                field.type_name = field.type_name.replace(old, new)
    for service in proto.service:
        for rpc in service.method:
            rpc.input_type = rpc.input_type.replace(old, new)
            rpc.output_type = rpc.output_type.replace(old, new)
    pool.Add(proto)

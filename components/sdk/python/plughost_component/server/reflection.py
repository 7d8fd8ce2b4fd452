"""gRPC server reflection, v1alpha (what daprd asks) and v1, listing only the services
served. grpcio-reflection 1.85 serves only v1alpha; v1 is the same messages under
another service name, so the v1alpha servicer answers both, and a renamed copy of
the v1alpha descriptor lets `file_containing_symbol` describe the v1 service too."""

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

V1 = "grpc.reflection.v1.ServerReflection"


def _add_v1_descriptor():
    old, new = "grpc.reflection.v1alpha", "grpc.reflection.v1"
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = new

    def rename(type_name):
        prefix = f".{old}."
        return f".{new}.{type_name[len(prefix):]}" if type_name.startswith(prefix) else type_name

    def fix(messages):
        for message in messages:
            for f in message.field:
                if f.HasField("type_name"):
                    f.type_name = rename(f.type_name)
            fix(message.nested_type)

    fix(proto.message_type)
    for service in proto.service:
        for method in service.method:
            method.input_type = rename(method.input_type)
            method.output_type = rename(method.output_type)
    pool.AddSerializedFile(proto.SerializeToString())


def add(server, service_names, log):
    names = [*service_names, reflection.SERVICE_NAME, V1]
    reflection.enable_server_reflection(names, server)
    try:
        _add_v1_descriptor()
    except Exception as error:  # listing still works without the descriptor
        log(f"warning: cannot describe {V1}: {error}")
    servicer = reflection.ReflectionServicer(names)
    handler = grpc.method_handlers_generic_handler(V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=v1alpha.ServerReflectionRequest.FromString,
            response_serializer=v1alpha.ServerReflectionResponse.SerializeToString,
        )
    })
    server.add_generic_rpc_handlers((handler,))

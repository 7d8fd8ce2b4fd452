"""`dapr.proto.components.v1.SecretStore` over a SecretStore."""


def services(pb, calls, cls):
    s, common_pb2 = pb.secretstore_pb2, pb.common_pb2

    class SecretStore(pb.secretstore_pb2_grpc.SecretStoreServicer):
        def Init(self, request, context):
            calls.init(context, request.metadata.properties)
            return s.SecretStoreInitResponse()

        def Features(self, request, context):
            return common_pb2.FeaturesResponse(features=calls.features(context))

        def Ping(self, request, context):
            calls.ping(context)
            return common_pb2.PingResponse()

        def Get(self, request, context):
            return calls.run(context, lambda c: s.GetSecretResponse(
                data={str(k): str(v) for k, v in dict(c.get(request.key, dict(request.metadata)) or {}).items()}))

        def BulkGet(self, request, context):
            return calls.run(context, lambda c: s.BulkGetSecretResponse(data={
                str(name): s.SecretResponse(secrets={str(k): str(v) for k, v in dict(values).items()})
                for name, values in dict(c.bulk_get(dict(request.metadata)) or {}).items()
            }))

    return [("dapr.proto.components.v1.SecretStore", pb.secretstore_pb2_grpc.add_SecretStoreServicer_to_server,
             SecretStore())]

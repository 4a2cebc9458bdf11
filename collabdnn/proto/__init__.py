"""Generated gRPC stubs (``python -m collabdnn.proto_gen``); do not edit them by hand.

The sources are ``protos/collabdnn/proto/*.proto`` (package ``collabdnn.proto``): the
folder mirrors this package so that the generated modules import each other as
``collabdnn.proto.x_pb2``.
"""

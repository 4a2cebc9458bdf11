"""Generated gRPC stubs (``python -m collabdnn.wire.proto_gen``); do not edit them by hand.

The sources are ``protos/collabdnn/wire/proto/*.proto``: the folder mirrors this package
so that the generated modules import each other as ``collabdnn.wire.proto.x_pb2``. The
protobuf package stays ``collabdnn.proto``: that is the name on the wire (method paths
such as ``/collabdnn.proto.CloudServer/Execute``), independent of the Python layout.
"""

"""The wire: the only code that touches protobuf messages.

``proto`` holds the generated stubs (sources in ``protos/collabdnn/wire/proto``),
``serde`` pairs every ``*_to_proto`` with its ``*_from_proto``, and ``status`` maps
domain errors to gRPC status codes in one place, for every servicer.
"""

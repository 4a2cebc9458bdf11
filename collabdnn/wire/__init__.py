"""The wire: the only code that touches protobuf messages.

``proto`` holds the generated stubs (sources in ``protos/collabdnn/wire/proto``);
``serde`` pairs every ``*_to_proto`` with its ``*_from_proto``; ``stubs`` are the typed
clients of the three services (domain objects in and out) and their names;
``messages`` names the request and reply types, for servicers' annotations only; and
``status`` is how every servicer answers: one decorator mapping domain errors and failed
downstream calls to status codes, and one readiness guard.
"""

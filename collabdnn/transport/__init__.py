"""gRPC plumbing shared by every service and client, free of any model or message.

``channels`` (client channels, message limits, retries, health checks), ``server`` (the
one server factory and serve loop of all three services), ``security`` (TLS, mutual TLS,
bearer token), ``admission`` (bounded queues), ``breaker`` (the agent's circuit
breaker for the cloud) and ``probe`` (the proto-less echo service that measures links).
"""

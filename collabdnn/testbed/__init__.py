"""Harness for tests, the demo and benchmarks: never imported by the runtime.

``procs`` (services as subprocesses), ``stack`` (cloud, agent and scheduler together),
``certs`` (a throwaway CA), ``linkswitch`` (a link drop under load) and ``probe_run``
(the link probe as processes, in a shaped namespace). Its extra dependencies come with
``pip install collabdnn[testbed]``; ``tests/unit/test_layout.py`` checks the runtime never
imports it.
"""

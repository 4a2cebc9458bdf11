"""Measuring what the planner needs, on real layers and real links.

``profiler`` (per-unit time, sizes and codec costs on real activations),
``profile_service`` (the Profile RPC of both services), ``linkest`` (link estimation
from calls and probes) and ``emulated`` (an in-process link shaper for runs without tc).
"""

"""Deciding where each unit runs: pure, torch-free functions over frozen dataclasses.

``link`` (the link as the planner sees it, and presets), ``energy`` (the mobile power
model), ``profiles`` (what a profiler measured, and the planner's input), ``planner``
(the shortest path and its baselines), ``predictor`` (Neurosurgeon-style latency
regression) and ``scheduling`` (when a report should trigger a re-plan).
"""

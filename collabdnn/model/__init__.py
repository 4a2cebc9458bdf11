"""The model side of the runtime: what a unit is and how a model is cut into units.

``units`` (what the planner places), ``alexnet`` and ``fx_chain`` (how models are cut),
``registry`` (name -> model), ``preprocess`` (unit 0: image bytes -> tensor),
``weights`` (where parameters come from and their hash), ``split_model`` (run any
half-open unit range ``[start, end)``). Imports torch; nothing here touches the wire.
"""

"""Split training: the forward pass runs as in inference, the backward pass follows it
back across the link, and each side updates only the units it holds.

Side-independent parts, used by the agent and the cloud alike:

- :mod:`~.optim`: the optimizers (SGD with momentum and weight decay, Adam), built per
  parameter so that a side holding a subset of the units updates them exactly as one
  optimizer over the whole model would;
- :mod:`~.hashing`: per-entry weight digests, combined into per-unit and whole-model
  hashes (the same whole-model hash inference compares);
- :mod:`~.side`: :class:`~.side.SideTrainer`, one side's units, optimizer state and
  the activations saved for the backward pass of the step in flight;
- :mod:`~.step`: one training step over a placement (forward, loss, backward, two-phase
  commit), against a remote side;
- :mod:`~.data`: the ImageFolder a run trains on; :mod:`~.checkpoint`: per-side and
  global checkpoints.

See docs/training.md.
"""

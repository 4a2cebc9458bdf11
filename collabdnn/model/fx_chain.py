"""Turn a graph-shaped torchvision classifier into a chain of units with torch.fx.

A model may be cut after node ``n`` only where exactly one tensor is live: ``n``'s
output, and nothing computed earlier is still needed later. Cutting there means a
single activation crosses the link. In a ResNet this happens between residual blocks,
so each block becomes one unit. Cuts right before an activation, normalisation,
dropout or flatten are dropped so those ride with the layer before them.
"""

from __future__ import annotations

import torch
from torch import fx, nn

from collabdnn.model.units import UnitModule

_RIDES_ALONG_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.SiLU,
    nn.GELU,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Flatten,
    nn.Identity,
)
_RIDES_ALONG_FUNCTIONS = {torch.relu, torch.flatten, nn.functional.relu, nn.functional.dropout}
_RIDES_ALONG_METHODS = {"relu", "flatten", "view", "reshape"}


def _rides_along(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], _RIDES_ALONG_MODULES)
    if node.op == "call_function":
        return node.target in _RIDES_ALONG_FUNCTIONS
    if node.op == "call_method":
        return node.target in _RIDES_ALONG_METHODS
    return False


def cut_points(graph: fx.Graph, modules: dict[str, nn.Module]) -> list[int]:
    """Indices k (into the node list) after which exactly node k's tensor is live."""
    nodes = [n for n in graph.nodes if n.op not in ("output", "get_attr")]
    position = {node: i for i, node in enumerate(nodes)}
    last_use: dict[fx.Node, int] = {}
    for i, node in enumerate(graph.nodes):
        for used in node.all_input_nodes:
            last_use[used] = i if node.op != "output" else len(nodes)
    cuts = []
    for k, node in enumerate(nodes[:-1]):
        if node.op == "placeholder":
            continue
        live = [n for n in nodes[: k + 1] if last_use.get(n, -1) > k]
        next_node = nodes[k + 1]
        if live == [node] and not _rides_along(next_node, modules):
            cuts.append(position[node])
    return cuts


def _segment(traced: fx.GraphModule, nodes: list[fx.Node], input_node: fx.Node) -> fx.GraphModule:
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {input_node: graph.placeholder("x")}

    def remap(node: fx.Node) -> fx.Node:
        if node not in env:  # a get_attr (a weight) used here: copy it in
            env[node] = graph.node_copy(node, remap)
        return env[node]

    for node in nodes:
        env[node] = graph.node_copy(node, remap)
    graph.output(env[nodes[-1]])
    return fx.GraphModule(traced, graph)


def _unit_name(nodes: list[fx.Node], taken: set[str]) -> str:
    targets = [str(n.target) for n in nodes if n.op == "call_module"]
    if not targets:
        targets = [getattr(n.target, "__name__", str(n.target)) for n in nodes]
    parts = [t.split(".") for t in targets]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    name = ".".join(common) if len(common) >= 2 else targets[0]
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}#{n}", n + 1
    taken.add(unique)
    return unique


def partition_fx(model: nn.Module) -> list[UnitModule]:
    """Cut ``model`` into units at every single-live-tensor point."""
    traced = fx.symbolic_trace(model)
    modules = dict(traced.named_modules())
    compute = [n for n in traced.graph.nodes if n.op not in ("placeholder", "output", "get_attr")]
    placeholders = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError("only single-input models can be cut into a chain")
    all_nodes = [n for n in traced.graph.nodes if n.op not in ("output", "get_attr")]
    cut_nodes = {all_nodes[k] for k in cut_points(traced.graph, modules)}
    units: list[UnitModule] = []
    taken: set[str] = set()
    current: list[fx.Node] = []
    input_node = placeholders[0]
    for node in compute:
        current.append(node)
        if node in cut_nodes or node is compute[-1]:
            units.append(
                UnitModule(_unit_name(current, taken), _segment(traced, current, input_node))
            )
            input_node, current = node, []
    return units

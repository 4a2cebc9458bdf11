"""Turn a graph-shaped classifier into a chain of units with torch.fx.

A model may be cut after node ``n`` only where exactly one value is live and that value
is a tensor: ``n``'s output, and nothing computed earlier (nor the input) is still
needed later. Cutting there means a single activation crosses the link. In a ResNet this
happens between residual blocks, so each block becomes one unit.

Everything is computed on one node order, the graph's own:

- *live* values are the placeholder and the computed nodes; parameters and buffers used
  directly (``get_attr`` nodes: ConvNeXt's layer scale, ViT's class token), and what is
  computed from them alone (Swin's relative position bias), are not activations: they
  never cross the link and never keep a cut from happening, because each unit that
  uses one gets its own copy of it (recomputed there: the same operations, the same
  bits);
- a value is live after position ``k`` when it was defined at or before ``k`` and is used
  after ``k``;
- what each node computes (a tensor, a tuple, a size) comes from running the graph
  once on fake tensors (no arithmetic, no memory): ShuffleNetV2's ``chunk`` returns a
  tuple, so the cut never falls right after it.

Cuts right before an activation, batch normalisation, dropout, flatten or a layout
operation (view, permute, size...) are dropped so those ride with the layer before
them; a layer norm does not ride along (it starts a pre-norm transformer block).

Each unit is named after the module that holds all its nodes (``layer1.0``,
``encoder.layers.encoder_layer_3``), refined by its heaviest submodule where two units
share one (``encoder.layers.encoder_layer_3.mlp``).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn

from collabdnn.model.units import UnitModule

__all__ = [
    "ChainError",
    "cut_points",
    "partition_fx",
    "restore_layout",
    "tensor_nodes",
    "trace",
    "unit_names",
    "weight_nodes",
]

_RIDES_ALONG_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.SiLU,
    nn.GELU,
    nn.Sigmoid,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Flatten,
    nn.Identity,
)
_RIDES_ALONG_FUNCTIONS: set[Any] = {
    torch.relu,
    torch.flatten,
    torch.sigmoid,
    nn.functional.relu,
    nn.functional.gelu,
    nn.functional.silu,
    nn.functional.hardswish,
    nn.functional.dropout,
}
# Layout and shape operations: a cut after them ships the same bytes as one before.
_RIDES_ALONG_FUNCTIONS |= {
    operator.getitem,
    getattr,
    torch.permute,
    torch.transpose,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
}
_RIDES_ALONG_METHODS = {
    "relu",
    "flatten",
    "view",
    "reshape",
    "contiguous",
    "size",
    "permute",
    "transpose",
    "squeeze",
    "unsqueeze",
}


class ChainError(ValueError):
    """The model cannot be cut into a chain (several inputs, a non-tensor output...)."""


def _rides_along(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], _RIDES_ALONG_MODULES)
    if node.op == "call_function":
        return node.target in _RIDES_ALONG_FUNCTIONS
    if node.op == "call_method":
        return node.target in _RIDES_ALONG_METHODS
    return False


def trace(model: nn.Module) -> fx.GraphModule:
    """``model`` traced symbolically (in its current train/eval mode)."""
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable Python
        raise ChainError(
            f"torch.fx cannot trace {type(model).__name__}: {type(exc).__name__}: {exc}"
        ) from exc


class _TypeRecorder(fx.Interpreter):
    """Runs the graph and remembers which nodes produced a single dense tensor, and
    the order of its dimensions in memory where that is not the standard one."""

    def __init__(self, module: fx.GraphModule) -> None:
        super().__init__(module)
        self.tensors: dict[fx.Node, tuple[int, ...] | None] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        if isinstance(value, torch.Tensor):
            if value.is_contiguous():
                self.tensors[n] = None
            elif _dense(value):
                self.tensors[n] = memory_order(value)
        return value


def memory_order(x: torch.Tensor) -> tuple[int, ...]:
    """x's dimensions from outermost to innermost in memory (by decreasing stride)."""
    strides = x.stride()
    return tuple(sorted(range(x.dim()), key=lambda d: (-strides[d], d)))


def _dense(x: torch.Tensor) -> bool:
    """Whether x fills its memory without gaps or overlaps (a permuted contiguous tensor)."""
    if x.numel() == 0:
        return False
    order = memory_order(x)
    expected = 1
    for d in reversed(order):
        if x.size(d) != 1 and x.stride(d) != expected:
            return False
        expected *= x.size(d)
    return True


def restore_layout(x: torch.Tensor, order: Sequence[int]) -> torch.Tensor:
    """A copy of ``x`` laid out in memory in dimension ``order`` (outermost first)."""
    inverse = [0] * len(order)
    for position, dim in enumerate(order):
        inverse[dim] = position
    return x.permute(*order).contiguous().permute(*inverse)


def _on_meta(module: nn.Module) -> bool:
    tensors = [*module.parameters(), *module.buffers()]
    return bool(tensors) and all(t.device.type == "meta" for t in tensors)


def tensor_nodes(
    traced: fx.GraphModule, input_shape: Sequence[int]
) -> dict[fx.Node, tuple[int, ...] | None]:
    """The nodes whose value is one dense tensor, for an input of ``input_shape``, each
    with its memory order where it is not contiguous (ConvNeXt's blocks are computed
    channels-last).

    The graph runs on fake tensors (shapes and dtypes only); a model whose parameters
    are on the meta device runs on meta tensors instead, and one that fake tensors
    cannot run (it reads a value: ``.item()``) runs once on zeros.
    """
    shape = tuple(input_shape)
    with torch.no_grad():
        if _on_meta(traced):
            recorder = _TypeRecorder(traced)
            recorder.run(torch.empty(shape, device="meta"))
            return recorder.tensors
        from torch._subclasses.fake_tensor import FakeTensorMode

        device = next((p.device for p in traced.parameters()), torch.device("cpu"))
        try:
            with FakeTensorMode(allow_non_fake_inputs=True) as mode:
                recorder = _TypeRecorder(traced)
                recorder.run(mode.from_tensor(torch.empty(shape, device=device)))
        except Exception:  # data-dependent Python: compute it for real, once
            recorder = _TypeRecorder(traced)
            recorder.run(torch.zeros(shape, device=device))
    return recorder.tensors


def weight_nodes(graph: fx.Graph) -> set[fx.Node]:
    """Parameters and buffers (``get_attr``) and the nodes computed from them alone.

    None of them depends on the input: they are not activations, and a unit that
    uses one recomputes it. Nodes that draw random numbers are not among them.
    """
    weights: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "get_attr":
            weights.add(node)
        elif node.op in ("call_function", "call_method", "call_module") and node.users:
            inputs = node.all_input_nodes
            if inputs and all(i in weights for i in inputs) and not _random(node):
                weights.add(node)
    return weights


def _random(node: fx.Node) -> bool:
    name = getattr(node.target, "__name__", str(node.target))
    return "rand" in name or "dropout" in name or "bernoulli" in name


def cut_points(
    graph: fx.Graph,
    modules: dict[str, nn.Module],
    tensors: Mapping[fx.Node, object] | None = None,
) -> list[fx.Node]:
    """The nodes after which exactly that node's value is live, and it is a tensor.

    ``tensors`` is :func:`tensor_nodes`' answer; without it every node counts as a
    tensor (only for graphs known to hold nothing else).
    """
    nodes = list(graph.nodes)
    position = {node: i for i, node in enumerate(nodes)}
    weights = weight_nodes(graph)
    last_use: dict[fx.Node, int] = {}
    for i, node in enumerate(nodes):
        for used in node.all_input_nodes:
            last_use[used] = i
    # live[k]: how many activations are defined at or before position k and used after it.
    delta = [0] * (len(nodes) + 1)
    for value, used_at in last_use.items():
        if value in weights:
            continue
        defined = position[value]
        if used_at > defined:
            delta[defined] += 1
            delta[used_at] -= 1
    compute = [n for n in nodes if n.op not in ("placeholder", "output") and n not in weights]
    following = dict(itertools.pairwise(compute))
    result = _result_node(graph)
    cuts = []
    live = 0
    for k, node in enumerate(nodes):
        live += delta[k]
        if node not in following or position[node] >= position[result]:
            continue  # no cut after the last node, nor after the result
        if live != 1 or last_use.get(node, -1) <= k:
            continue  # something else is live too, or this value is not used later
        if tensors is not None and node not in tensors:
            continue  # a tuple, a size...: not one tensor
        if not _rides_along(following[node], modules):
            cuts.append(node)
    return cuts


def _result_node(graph: fx.Graph) -> fx.Node:
    output = next(n for n in graph.nodes if n.op == "output")
    result = output.args[0]
    if not isinstance(result, fx.Node):
        raise ChainError(
            f"the model returns {type(result).__name__}, not one tensor: a chain of units "
            "must end in a single output"
        )
    return result


def _segment(
    traced: fx.GraphModule,
    nodes: list[fx.Node],
    input_node: fx.Node,
    result: fx.Node,
    weights: set[fx.Node],
    layout: tuple[int, ...] | None = None,
) -> fx.GraphModule:
    graph = fx.Graph()
    x = graph.placeholder("x")
    if layout is not None:  # the input arrives contiguous: lay it out as the model had it
        x = graph.call_function(restore_layout, (x, layout))
    env: dict[fx.Node, fx.Node] = {input_node: x}

    def remap(node: fx.Node) -> fx.Node:
        if node not in env:  # a weight, or a node computed from weights alone: copy it in
            if node not in weights:
                raise ChainError(f"node {node.name} crosses a unit boundary")
            env[node] = graph.node_copy(node, remap)
        return env[node]

    for node in nodes:
        env[node] = graph.node_copy(node, remap)
    graph.output(env[result])
    return fx.GraphModule(traced, graph)


def _module_path(node: fx.Node) -> str:
    """The module whose forward created ``node`` ("" for the model's own code)."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack")
    if stack:
        path, _ = list(stack.values())[-1]
        return str(path)
    return ""


def _common_prefix(paths: list[str]) -> list[str]:
    common: list[str] = []
    for level in zip(*(p.split(".") for p in paths), strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return common


def unit_names(groups: list[list[fx.Node]], modules: dict[str, nn.Module]) -> list[str]:
    """Meaningful, unique names: module paths.

    A unit is named after the module holding all its nodes when no other unit has a
    node in that module (``layer1.0``, ``stage2.1``); otherwise after that module's
    child holding the unit's heaviest layer (``encoder_layer_0.self_attention`` and
    ``encoder_layer_0.mlp``; ``features.0`` for a VGG conv and its ReLU).
    """

    def weight(path: str) -> int:
        module = modules.get(path)
        return sum(p.numel() for p in module.parameters()) if module is not None else 0

    def naming(nodes: list[fx.Node]) -> list[fx.Node]:
        """Less the trailing layout operations, which may open the next module."""
        end = len(nodes)
        while (
            end > 1 and nodes[end - 1].op != "call_module" and _rides_along(nodes[end - 1], modules)
        ):
            end -= 1
        return nodes[:end]

    paths = [[p for p in map(_module_path, naming(nodes)) if p] for nodes in groups]
    names: list[str] = []
    for index, (nodes, own) in enumerate(zip(groups, paths, strict=True)):
        if not own:
            names.append(str(getattr(nodes[0].target, "__name__", nodes[0].target)))
            continue
        prefix = ".".join(_common_prefix(own))
        others = (p for i, group in enumerate(paths) if i != index for p in group)
        if prefix and not any(p == prefix or p.startswith(prefix + ".") for p in others):
            names.append(prefix)
            continue
        layers = [str(n.target) for n in naming(nodes) if n.op == "call_module"] or own
        heaviest = max(layers, key=weight)  # max keeps the first of equals
        depth = len(prefix.split(".")) + 1 if prefix else 1
        names.append(".".join(heaviest.split(".")[:depth]))
    unique: list[str] = []
    for name in names:
        candidate, n = name, 2
        while candidate in unique:
            candidate, n = f"{name}#{n}", n + 1
        unique.append(candidate)
    return unique


def partition_fx(
    model: nn.Module, input_shape: Sequence[int] = (1, 3, 224, 224)
) -> list[UnitModule]:
    """Cut ``model`` into units at every point where one tensor alone is live.

    ``input_shape`` is the shape of the preprocessed input (batch included): what
    each node computes is learnt from it.
    """
    traced = trace(model)
    modules = dict(traced.named_modules())
    graph = traced.graph
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ChainError(
            f"{type(model).__name__} takes {len(placeholders)} inputs; only single-input "
            "models can be cut into a chain"
        )
    result = _result_node(graph)
    tensors = tensor_nodes(traced, input_shape)
    if result not in tensors:
        raise ChainError(f"{type(model).__name__} does not return one tensor")
    cut_nodes = set(cut_points(graph, modules, tensors))
    weights = weight_nodes(graph)
    compute = [n for n in graph.nodes if n.op not in ("placeholder", "output") and n not in weights]
    # Nodes after the result only feed the output node; there are none in practice.
    compute = compute[: compute.index(result) + 1]
    groups: list[list[fx.Node]] = [[]]
    for node in compute:
        groups[-1].append(node)
        if node in cut_nodes:
            groups.append([])
    units: list[UnitModule] = []
    input_node = placeholders[0]
    for name, nodes in zip(unit_names(groups, modules), groups, strict=True):
        layout = tensors.get(input_node) if input_node is not placeholders[0] else None
        segment = _segment(traced, nodes, input_node, nodes[-1], weights, layout)
        units.append(UnitModule(name, segment))
        input_node = nodes[-1]
    return units

"""The architecture, checked: the runtime never imports the harness or the CLI.

Runtime = ``collabdnn`` (less ``cli`` and ``testbed``), ``mobile_agent``,
``cloud_server`` and ``scheduler``. Imports are read from the source (every ``import``
statement, function-level ones included), so a lazy import cannot hide.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.common import REPO

pytestmark = pytest.mark.unit

RUNTIME_PACKAGES = ("collabdnn", "mobile_agent", "cloud_server", "scheduler")
NOT_RUNTIME = ("collabdnn/cli/", "collabdnn/testbed/", "collabdnn/__main__.py")
HARNESS = ("collabdnn.testbed", "collabdnn.cli", "benchmarks", "tests")


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "_pb2" not in p.name)


def _runtime_files() -> list[Path]:
    files = [f for pkg in RUNTIME_PACKAGES for f in _modules(pkg)]
    return [f for f in files if not str(f.relative_to(REPO)).startswith(NOT_RUNTIME)]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_runtime_imports_neither_harness_nor_cli() -> None:
    bad = {
        str(f.relative_to(REPO)): sorted(n for n in _imports(f) if _matches(n, HARNESS))
        for f in _runtime_files()
    }
    assert not {k: v for k, v in bad.items() if v}


def _outside_the_wire() -> list[Path]:
    """Every module but the wire's and the tests': runtime, CLI, test bed, benchmarks."""
    files = [f for pkg in (*RUNTIME_PACKAGES, "benchmarks") for f in _modules(pkg)]
    return [f for f in files if not str(f.relative_to(REPO)).startswith("collabdnn/wire/")]


def _type_checking_nodes(tree: ast.AST) -> set[ast.AST]:
    """The nodes inside ``if TYPE_CHECKING:`` blocks."""
    found: set[ast.AST] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and (
            (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        ):
            found.update(n for stmt in node.body for n in ast.walk(stmt))
    return found


def test_only_the_wire_imports_protobuf_messages() -> None:
    """``*_pb2`` message modules are touched by ``collabdnn.wire`` alone: everyone else
    converts with ``serde`` or calls through ``wire.stubs``. Servers may register
    servicers from ``*_pb2_grpc`` (their base classes and ``add_*_to_server``), and
    servicers may name message types in annotations, from ``collabdnn.wire.messages``
    imported under ``TYPE_CHECKING`` only (so no code outside the wire can build one)."""
    offenders = {}
    for f in _outside_the_wire():
        found = sorted(
            n for n in _imports(f) if n.startswith("collabdnn.wire.proto.") and n.endswith("_pb2")
        )
        if found:
            offenders[str(f.relative_to(REPO))] = found
    assert not offenders, f"protobuf messages used outside collabdnn.wire: {offenders}"


def test_message_types_are_named_in_annotations_only() -> None:
    offenders = []
    for f in _outside_the_wire():
        tree = ast.parse(f.read_text(), str(f))
        guarded = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if "collabdnn.wire.messages" in names and node not in guarded:
                offenders.append(f"{f.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"collabdnn.wire.messages imported at run time: {offenders}"


def test_planning_is_torch_free() -> None:
    code = (
        "import sys, collabdnn.planning.planner, collabdnn.planning.energy, "
        "collabdnn.planning.link, collabdnn.planning.profiles, collabdnn.planning.predictor, "
        "collabdnn.planning.scheduling, collabdnn.placement, collabdnn.results; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_no_comment_cites_a_file_outside_the_repo() -> None:
    files = [p for p in REPO.rglob("*") if p.suffix in {".py", ".md", ".proto", ".yml", ".toml"}]
    files = [p for p in files if ".venv" not in p.parts and ".git" not in p.parts]
    cited = [str(p.relative_to(REPO)) for p in files if "design" + ".md" in p.read_text()]
    assert not cited

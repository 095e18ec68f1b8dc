"""The layering rule of docs/ARCHITECTURE.md ("What may import what"): no module imports
a layer above its own, nothing in attnmt imports in a circle, the core never imports the
periphery, and importing the core loads neither matplotlib nor tqdm (so `attnmt
translate` starts fast and the viz extra stays optional)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import attnmt

PACKAGE = Path(attnmt.__file__).parent
LAYERS = (  # bottom first; a module imports its own layer and the ones before it
    ("config", "errors", "special", "device", "files"),  # flat: small and used everywhere
    ("data", "nn"),
    ("models", "runtime"),  # runtime: exported models (ONNX) behind the model interface
    ("io",),  # checkpoint.py and run.py: they build models
    ("search",),
    ("translate",),
    ("evaluate",),  # decodes through the Translator
    ("train",),  # validates through evaluate
)
CORE = tuple(name for layer in LAYERS[1:] for name in layer)
PERIPHERY = ("viz", "compare", "serve", "cli", "export")  # above every layer: may import all
TOP = ("__init__", "__main__")  # attnmt itself: the public names and `python -m attnmt`


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(extra: dict[str, str] | None = None) -> dict[str, set[str]]:
    """module -> the attnmt modules it imports: at module level, under `if TYPE_CHECKING:`
    and inside functions alike (each is knowledge of the other module). `extra` adds
    modules given as source text (plain modules, not packages)."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    sources = {name: path.read_text(encoding="utf-8") for name, path in paths.items()}
    sources |= extra or {}
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, source in sources.items():
        is_package = name in paths and paths[name].name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(source)):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from . import x, from ..x import y
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:  # `from package import module` names the module
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in paths else base)
            graph[name] |= {target for target in targets if target in paths and target != name}
    return graph


def layer_of(module: str) -> float:
    """The index of the module's layer in LAYERS; the periphery and attnmt itself are
    above every layer (infinity)."""
    top = module.split(".")[1] if "." in module else "__init__"
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    return float("inf")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_every_subpackage_and_flat_module_has_a_place_in_the_order() -> None:
    placed = {name for layer in LAYERS for name in layer} | set(PERIPHERY) | set(TOP)
    found = {path.stem for path in PACKAGE.glob("*.py")}
    found |= {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert found - placed == set(), "add it to LAYERS or PERIPHERY (and ARCHITECTURE.md)"
    assert placed - found == set(), "LAYERS names something attnmt no longer has"


def test_the_import_graph_sees_every_kind_of_import() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from attnmt.errors import UserError\n"
        "from attnmt.data import text\n"
        "from . import special\n"
        "if TYPE_CHECKING:\n"
        "    from attnmt.models.interface import Seq2SeqModel\n"
        "def later():\n"
        "    import attnmt.viz.plot\n"
    )
    graph = import_graph({"attnmt.probe": source})
    assert graph["attnmt.probe"] == {
        "attnmt.errors",
        "attnmt.data.text",
        "attnmt.special",
        "attnmt.models.interface",
        "attnmt.viz.plot",
    }


def test_nothing_in_attnmt_imports_in_a_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_find_cycle_reports_the_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_a_layer_above_its_own() -> None:
    offenders = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "allowed", "forbidden"),
    [
        ("attnmt.files", "attnmt.errors", "attnmt.data.text"),
        ("attnmt.data.text", "attnmt.files", "attnmt.models.build"),
        ("attnmt.io.run", "attnmt.models.build", "attnmt.search.decode"),
        ("attnmt.translate.translator", "attnmt.search.decode", "attnmt.evaluate.metrics"),
        ("attnmt.train.trainer", "attnmt.evaluate.evaluation", "attnmt.viz.plot"),
    ],
)
def test_layer_of_follows_the_written_order(module: str, allowed: str, forbidden: str) -> None:
    assert layer_of(allowed) <= layer_of(module) < layer_of(forbidden)


def test_importing_the_core_loads_neither_matplotlib_nor_tqdm() -> None:
    """torch 2.13 itself imports tqdm, so the check is against what the core's own
    dependencies load: attnmt must add neither module."""
    modules = ", ".join(f"attnmt.{name}" for name in CORE)
    code = f"""
import importlib, pkgutil, sys
import numpy, pydantic, sacrebleu, sentencepiece, torch, yaml
for name in ("matplotlib", "tqdm"):  # what the dependencies loaded is not attnmt's doing
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]
import attnmt, {modules}
for package in ({modules},):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
print(sorted(m for m in ("matplotlib", "tqdm") if m in sys.modules))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_translate_help_does_not_load_matplotlib() -> None:
    code = """
import contextlib, io, sys
from attnmt.cli.main import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(["translate", "--help"])
print("matplotlib" in sys.modules)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_plot_without_the_viz_extra_is_one_clear_line() -> None:
    code = """
import sys
sys.modules["matplotlib"] = None  # as if the viz extra were not installed
from attnmt.cli.main import main
sys.exit(main(["plot", "curves", "some_run"]))
"""
    result = run_python(code)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "attnmt plot: error: plots need matplotlib: pip install 'attnmt[viz]'"
    ]

"""The layering rule: the core never imports the periphery, and importing the core loads
neither matplotlib nor tqdm (so `attnmt translate` starts fast and the viz extra stays
optional)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import attnmt

PACKAGE = Path(attnmt.__file__).parent
CORE = ("io", "data", "nn", "models", "search", "train", "evaluate", "translate")
PERIPHERY = ("viz", "compare", "cli", "serve")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_core_modules_never_import_the_periphery() -> None:
    offenders = []
    core_files = [PACKAGE / f"{name}.py" for name in ("errors", "special", "device")]
    for sub in ("config", *CORE):
        core_files += sorted((PACKAGE / sub).rglob("*.py"))
    for path in core_files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "attnmt" and len(parts) > 1 and parts[1] in PERIPHERY:
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offenders == []


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

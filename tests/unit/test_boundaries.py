"""Import boundaries: the core imports no orchestration tool, and only what it declares.

The library under simgan/ (everything but the stage entry points in simgan/stages/) has to import and
run without the pipeline's tools, so it can be tested and reused on its own. The one exception is
great_expectations: simgan/validation/ is the single adapter to it, so a GX upgrade touches one package,
and nothing else in simgan (the stages included) imports it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "simgan"
ORCHESTRATION = {"prefect", "dvc", "dvclive", "bentoml", "great_expectations"}
GX_ADAPTER = CORE / "validation"  # the one package that may import great_expectations
# the core's own dependencies: torch, numpy, pandas, PIL, scipy/h5py for the formats, stdlib; tqdm for progress bars
CORE_ALLOWED = {
    "torch",
    "numpy",
    "pandas",
    "PIL",
    "scipy",
    "h5py",
    "tqdm",
    "pydantic",
    "yaml",
    "distributed",
    "simgan",
} | set(sys.stdlib_module_names)  # pydantic + yaml: the params loader (simgan/config.py); distributed: Dask, lazily
# imported by simgan/cluster.py alone


def imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def allowed(path: Path) -> set[str]:
    """What a core file may import: the core's dependencies, plus great_expectations in the GX adapter."""
    return CORE_ALLOWED | ({"great_expectations"} if path.is_relative_to(GX_ADAPTER) else set())


def test_core_imports_no_orchestration_tool_and_nothing_undeclared():
    core_files = [p for p in CORE.rglob("*.py") if "stages" not in p.relative_to(CORE).parts]
    assert len(core_files) > 10
    offenders = {str(p.relative_to(CORE)): sorted(imported_top_levels(p) - allowed(p)) for p in core_files}
    assert {f: names for f, names in offenders.items() if names} == {}
    assert not any(imported_top_levels(p) & (ORCHESTRATION - allowed(p)) for p in core_files)


def test_only_simgan_validation_imports_great_expectations():
    importers = {
        p.relative_to(CORE).as_posix() for p in CORE.rglob("*.py") if "great_expectations" in imported_top_levels(p)
    }
    assert importers and all(name.startswith("validation/") for name in importers), importers


def test_validation_imports_great_expectations_lazily():
    """Importing the package or the stage must not import GX (~3 s): only validating does."""
    code = (
        "import sys, simgan.validation, simgan.stages.validate; "
        "assert 'great_expectations' not in sys.modules, 'great_expectations imported eagerly'"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_stages_that_do_not_compute_with_torch_do_not_import_it():
    """prepare, validate and report (and `simgan check`) never compute with torch, and its import costs each
    stage process ~2 s of CPU: importing the params loader and those stages, loading params.yaml and installing
    the stages' error hook must leave torch unimported."""
    modules = ("simgan.config", "simgan.stages.prepare", "simgan.stages.validate", "simgan.stages.report")
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    assert 'torch' not in sys.modules, f'importing {name} imported torch'\n"
        "from simgan.config import load_params\n"
        "from simgan.stages.common import one_line_errors\n"
        "load_params('params.yaml')\n"
        "one_line_errors('prepare')\n"
        "assert 'torch' not in sys.modules, 'loading params.yaml imported torch'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_service_uses_only_simgan_inference():
    """service.py imports simgan.inference only, so serving preprocesses images as training does."""
    tree = ast.parse((CORE.parent / "service.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in modules if name.split(".")[0] == "simgan"} == {"simgan.inference"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_no_stage_imports_another_stage():
    """Stages are thin leaves over the library: what two stages share lives in the library or in
    simgan.stages.common, so that a stage can change without changing what another stage does."""
    stages = sorted(p for p in (CORE / "stages").glob("*.py") if p.stem not in ("__init__", "common"))
    assert len(stages) >= 9
    names = {f"simgan.stages.{p.stem}" for p in stages}
    for path in stages:
        crossing = sorted(m for m in imported_modules(path) if m in names and m != f"simgan.stages.{path.stem}")
        assert not crossing, f"{path.name} imports {crossing}"


def test_no_branch_on_the_task_name():
    """Tasks are data (simgan.tasks): the code asks a task's spec instead of testing its name."""
    offenders = [
        f"{path.relative_to(CORE)}:{number}"
        for path in CORE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "task ==" in line
    ]
    assert not offenders, offenders

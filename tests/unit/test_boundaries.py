"""Import boundaries (ARCHITECTURE §3): the core imports no orchestration tool, and only what it declares."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "simgan"
ORCHESTRATION = {"prefect", "dvc", "dvclive", "bentoml", "great_expectations"}
# ARCHITECTURE §3: torch, numpy, pandas, PIL, scipy/h5py for the formats, stdlib; tqdm for progress bars
CORE_ALLOWED = {"torch", "numpy", "pandas", "PIL", "scipy", "h5py", "tqdm", "pydantic", "yaml", "simgan"} | set(
    sys.stdlib_module_names)  # pydantic + yaml: the params loader (simgan/config.py)


def imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_orchestration_tool_and_nothing_undeclared():
    core_files = [p for p in CORE.rglob("*.py") if "stages" not in p.relative_to(CORE).parts]
    assert len(core_files) > 10
    offenders = {str(p.relative_to(CORE)): sorted(imported_top_levels(p) - CORE_ALLOWED) for p in core_files}
    assert {f: names for f, names in offenders.items() if names} == {}
    assert not any(imported_top_levels(p) & ORCHESTRATION for p in core_files)


def test_service_uses_only_simgan_inference():
    """service.py (ARCHITECTURE §3): simgan.inference only, so serving preprocesses as training does."""
    tree = ast.parse((CORE.parent / "service.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in modules if name.split(".")[0] == "simgan"} == {"simgan.inference"}

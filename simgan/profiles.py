"""Profiles: deltas over params.yaml, applied the DVC way (`dvc exp run -S key=value`), never by copying.

A profile is `profiles/<name>.yaml` holding only the values that differ from params.yaml (e.g. the
paper's settings for a GPU). `overrides` checks it against params.yaml — the merged params are loaded
by the same strict loader as every stage, so an unknown key or a bad value is refused here, by its dotted
key — and returns one `key=value` per changed leaf, which `dvc exp run -S` applies to a copy of
params.yaml inside an experiment. params.yaml itself is not rewritten.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from simgan.config import ConfigError, load_params, read_yaml

PROFILES = Path("profiles")


def leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": value} for every non-mapping value of a nested mapping."""
    flat = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= leaves(value, dotted + ".")
        else:
            flat[dotted] = value
    return flat


def merge(base: dict, delta: dict, prefix: str = "") -> dict:
    merged = dict(base)
    for key, value in delta.items():
        if isinstance(value, dict):
            if not isinstance(base.get(key, {}), dict):
                raise ConfigError(f"{prefix}{key}: the profile gives a section where params.yaml has a value")
            merged[key] = merge(base.get(key, {}), value, f"{prefix}{key}.")
        else:
            merged[key] = value
    return merged


def overrides(name: str, params: Path = Path("params.yaml"), folder: Path = PROFILES) -> list[str]:
    """`key=value` strings for `dvc exp run -S`, after checking the profile over `params` whole."""
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ConfigError(f"{path}: no such profile (profiles here: {', '.join(known) or 'none'})")
    delta = read_yaml(path) or {}
    if not isinstance(delta, dict):
        raise ConfigError(f"{path}: a profile is a mapping of params.yaml sections")
    merged = merge(read_yaml(Path(params)), delta)
    with tempfile.TemporaryDirectory() as scratch:
        checked = Path(scratch) / "params.yaml"
        checked.write_text(yaml.safe_dump(merged, sort_keys=False))
        try:
            load_params(checked)
        except ConfigError as error:
            raise ConfigError(f"{path} over {params}: {str(error).split(': ', 1)[1]}") from None
    return [f"{key}={json.dumps(value)}" for key, value in leaves(delta).items()]

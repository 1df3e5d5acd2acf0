"""Checkpoints: one file of plain state (tensors, numbers, strings), written atomically.

A checkpoint holds the model configs (so a refiner can be rebuilt from the file alone), the
state_dicts of refiner, discriminator and both optimisers, the history buffer, the RNG states and
the step. It is read with `torch.load(weights_only=True)`: no pickled code runs when a file is
opened. Writes go to a temporary file in the same folder, are fsynced, then renamed over the
target: a killed process leaves either the previous checkpoint or the new one, never half a file.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from simgan.io import atomic_write

FORMAT = "simgan-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the file and the reason."""


_UNSAFE_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_BOILERPLATE = ("weights only load failed", "weights_only", "please file an issue", "check the documentation")


def refusal(path: str | Path, error: BaseException) -> str:
    """One line naming `path` and why torch's weights-only reader refused it, in simgan's words.

    torch's own message suggests retrying with `weights_only=False`, which would run whatever code the file
    holds; simgan never does, so that advice is dropped.
    """
    text = str(error)
    unsafe = _UNSAFE_GLOBAL.search(text)
    if unsafe:
        return (
            f"{path}: not a readable simgan checkpoint: it holds pickled code or objects ({unsafe.group(1)}), "
            f"which simgan refuses to load for safety (a simgan checkpoint holds only tensors, numbers and strings)"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
    except OSError:
        head = b""
    if head[:1] == b"\x80" and isinstance(error, pickle.UnpicklingError):  # PROTO: a bare pickle, not torch's zip
        return (
            f"{path}: not a readable simgan checkpoint: it is a bare Python pickle (not torch's file format), "
            f"which may hold code; simgan refuses to unpickle it for safety"
        )
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not any(b in line.lower() for b in _TORCH_BOILERPLATE)]
    lines = [line.removeprefix("WeightsUnpickler error:").strip() for line in lines]
    detail = next((line for line in lines if line), type(error).__name__).split(". ")[0]
    return f"{path}: not a readable simgan checkpoint (corrupt, truncated, or not saved by simgan): {detail}"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write `state` (plain containers of tensors, numbers and strings) to `path`."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    atomic_write(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, refusing anything else with a clear message."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        IndexError,
        KeyError,
    ) as error:  # IndexError, KeyError: what the weights-only unpickler raises on some garbage
        raise CheckpointError(refusal(path, error)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a simgan checkpoint (no '{FORMAT}' format marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {state.get('format_version')} is not supported "
            f"(this simgan reads version {FORMAT_VERSION})"
        )
    return state


def load_module_state(module: torch.nn.Module, state: dict, *, what: str, path: str | Path) -> None:
    """`module.load_state_dict(state)`, turning torch's key/shape mismatch dump into one sentence."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [k for k in own.keys() & state.keys() if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or mismatched:
        details = []
        if mismatched:
            key = mismatched[0]
            details.append(f"{key} has shape {tuple(state[key].shape)} in the file, {tuple(own[key].shape)} here")
        if missing:
            details.append(f"{len(missing)} parameter(s) missing from the file, e.g. {missing[0]}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected parameter(s), e.g. {unexpected[0]}")
        raise CheckpointError(f"{path}: the {what} in this checkpoint has another architecture: " + "; ".join(details))
    module.load_state_dict(state)


def config_from_state(config_class, state: dict, key: str, path: str | Path):
    """Rebuild a frozen config dataclass saved under `key`, or say why the file cannot give one."""
    if key not in state:
        raise CheckpointError(f"{path}: checkpoint has no '{key}' (is it a refiner checkpoint?)")
    try:
        return config_class(**state[key])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: '{key}' in the checkpoint is not valid for this simgan: {error}") from None

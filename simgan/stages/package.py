"""Stage package: the trained refiner into the BentoML model store, then the bento that serves it.

One bento per task (`simgan-gaze`, `simgan-hand`), not one for both: each task has its own model,
input size and limits; a per-task stage (like every stage here) rebuilds only the task whose refiner
changed; and a deployed bento then needs no setting to say which model it serves. The task, model tag
and input limits are bento arguments (params.yaml `package.<task>`), baked in at build.

Names are deterministic, so rebuilding an unchanged model piles up no copies: the model is
`simgan-refiner-<task>:<hash of its config and weights>`, the bento `simgan-<task>:<hash of the model
tag, the arguments and the files it includes>`; a tag already in the store is reused. The store is
$BENTOML_HOME (the Makefile points it at .bentoml/ in the repository; so does this stage when unset).
Writes artifacts/package/<task>/bento.json with both tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from simgan import layout
from simgan.config import PackageParams
from simgan.inference import load_refiner
from simgan.io import atomic_write
from simgan.stages.common import parse

BENTOFILE = Path("bentofile.yaml")
SERVICE_FILES = ("bentofile.yaml", "service.py")
WEIGHTS_FILE = "refiner.pt"  # names service.py reads
CONFIG_FILE = "refiner_config.json"


def model_name(task: str) -> str:
    return f"simgan-refiner-{task}"


def bento_name(task: str) -> str:
    return f"simgan-{task}"


def weights_digest(config: dict, state_dict: dict[str, torch.Tensor]) -> str:
    """A hash of what the network computes: its config and every tensor (name, dtype, shape, bytes)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:20]


def files_digest(root: Path, extra: dict) -> str:
    """A hash of the bento's inputs: service.py, bentofile.yaml, the simgan sources it includes, `extra`."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    files = [root / name for name in SERVICE_FILES] + sorted(
        p for p in (root / "simgan").rglob("*.py") if "stages" not in p.relative_to(root / "simgan").parts
    )
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def git_commit(root: Path) -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def data_version(root: Path) -> str:
    """The md5 data.dvc records for data/ (what the model was trained on), or "unknown"."""
    try:
        outs = yaml.safe_load((root / "data.dvc").read_text())["outs"]
        return str(outs[0]["md5"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return "unknown"


def training_metrics(task: str, root: Path) -> dict:
    path = root / layout.trained(task) / "dvclive" / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def in_store(kind: str, tag: str) -> bool:
    """Whether BentoML's store holds a whole entry at `tag` (`kind`: "models" or "bentos").

    BentoML saves an entry in place, not atomically: a package killed while saving leaves the entry's
    folder without its model.yaml / bento.yaml, and reusing it would fail every later run. Such a torn
    entry is removed here, so that it is built again.
    """
    import bentoml
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml.exceptions import NotFound

    store = bentoml.models if kind == "models" else bentoml.bentos
    try:
        store.get(tag)
        return True
    except NotFound:
        return False
    except Exception as error:  # BentoMLException, OSError, YAML errors: whatever a torn entry raises
        home = BentoMLContainer.model_store_dir.get() if kind == "models" else BentoMLContainer.bento_store_dir.get()
        shutil.rmtree(Path(home) / Path(*tag.split(":")), ignore_errors=True)
        print(f"package: {tag} was half saved in the store ({type(error).__name__}); removed, built again")
        return False


def store_model(task: str, checkpoint: Path, metadata: dict) -> tuple[str, bool]:
    """Put the refiner (state_dict + config) in the model store; (tag, whether it was there already)."""
    import bentoml

    refiner = load_refiner(checkpoint)
    config, state_dict = refiner.config.to_dict(), refiner.state_dict()
    tag = f"{model_name(task)}:{weights_digest(config, state_dict)}"
    if in_store("models", tag):
        return tag, True
    with bentoml.models.create(
        tag, labels={"task": task, "project": "simgan"}, metadata={**metadata, "refiner_config": config}
    ) as model:
        torch.save(state_dict, model.path_of(WEIGHTS_FILE))
        Path(model.path_of(CONFIG_FILE)).write_text(json.dumps(config, indent=2))
    return tag, False


def service_args(task: str, model_tag: str, params: PackageParams) -> dict:
    """The bento arguments service.py reads (`ServiceArgs`)."""
    return {"task": task, "model": model_tag, **params.model_dump()}


def build_bento(task: str, args: dict, root: Path) -> tuple[str, bool]:
    """`bentoml build` of bentofile.yaml with these arguments; (tag, whether it was there already)."""
    import bentoml

    tag = f"{bento_name(task)}:{files_digest(root, args)}"
    if in_store("bentos", tag):
        return tag, True
    bento = bentoml.bentos.build_bentofile(
        str(root / BENTOFILE),
        name=bento_name(task),
        version=tag.split(":")[1],
        labels={"task": task, "model": args["model"].replace(":", "-")},
        build_ctx=str(root),
        args=args,
    )
    return str(bento.tag), False


def run(task: str, params: PackageParams, root: Path = Path(".")) -> dict:
    root = root.resolve()
    metadata = {
        "task": task,
        "training_metrics": training_metrics(task, root),
        "data_version": data_version(root),
        "git_commit": git_commit(root),
        "checkpoint": str(layout.trained(task) / "checkpoint.pt"),
    }
    model_tag, model_reused = store_model(task, root / layout.trained(task) / "checkpoint.pt", metadata)
    args = service_args(task, model_tag, params)
    bento_tag, bento_reused = build_bento(task, args, root)
    print(
        f"package@{task}: model {model_tag} ({'already in the store' if model_reused else 'stored'}), "
        f"bento {bento_tag} ({'already built' if bento_reused else 'built'}) in {os.environ['BENTOML_HOME']}"
    )
    return {"task": task, "bento": bento_tag, "model": model_tag, "service": "service:Refiner", "args": args}


def main(argv: list[str] | None = None) -> int:
    task, params, _ = parse("package", __doc__, argv)
    # Before bentoml is imported: the store inside the repository, no telemetry (as the Makefile sets them).
    os.environ.setdefault("BENTOML_HOME", str(Path(".bentoml").resolve()))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    result = run(task, params.package[task])
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(layout.packaged(task) / "bento.json", lambda handle: handle.write(text.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

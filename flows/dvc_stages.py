"""DVC as the flows see it: which stages, in which order; run one; read the metrics; hash data/.

Plain functions with no Prefect in them, so they run and test without an engine; `pipeline.py` and
`retrain.py` wrap them in tasks. Everything that changes the workspace goes through the DVC command line
as a subprocess (`python -m dvc`: DVC's own messages and exit codes, its global state kept out of the
flow process); the in-process API (`dvc.repo.Repo`) only reads: the DAG from dvc.yaml, and the metrics.

Stage order is never written here: it is the topological order of the DAG DVC builds from dvc.yaml
(`Repo.index.graph`), ties broken by the order the stages are declared in, so a foreach expands as
prepare@gaze, prepare@hand, validate@gaze, ... and a stage listed before its dependencies still runs after them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

# `python -m dvc` of the interpreter that runs the flow (not whatever is on PATH), with Ctrl-C restored: a
# process started in the background by a non-interactive shell (`cmd &`, nohup, many service managers)
# inherits SIGINT *ignored*, Python then installs no KeyboardInterrupt handler, and neither DVC nor the
# stage it runs would stop on the SIGINT that `_interrupt` sends: DVC would be SIGKILLed with its lock
# held and the trainer would not write its checkpoint-on-interrupt. The handler set here is inherited as
# the default by DVC's children.
DVC = (
    sys.executable,
    "-c",
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('dvc', run_name='__main__', alter_sys=True)",
)
OUTPUT_TAIL_LINES = 20  # lines of a failed stage's output quoted in the error
# After SIGINT, how long DVC and its stage get before SIGKILL: longer than torchrun's shutdown of a data-parallel
# stage (it passes SIGINT to its ranks, which save at their next step, and kills them after 30 s) plus that
# checkpoint, or ranks in their own sessions would be orphaned holding their GPUs. A single process exits at once.
INTERRUPT_GRACE_S = 45.0
IMAGE_SUFFIX = ".png"
MAX_IMAGES_PER_STAGE = 12  # a directory out may hold thousands of PNGs; publish the first few
# Stages whose failure no retry can fix: they judge the data (Great Expectations suites), and the same suite on
# the same data gives the same verdict. Their failure fails the run at once, whatever `retries` says.
PERMANENT_STAGE_GROUPS = ("validate", "validate_refined")

Log = Callable[[str], None]


class DvcError(RuntimeError):
    """A DVC command other than a stage run failed (metrics, status, add)."""


class StageFailed(DvcError):
    """`dvc repro -s <stage>` exited non-zero; the message ends with the stage's own output."""

    def __init__(self, stage: str, returncode: int, tail: Iterable[str], timeout_s: float | None = None) -> None:
        self.stage, self.returncode, self.tail, self.timeout_s = stage, returncode, list(tail), timeout_s
        if timeout_s is not None:
            head = f"DVC stage '{stage}' timed out after {timeout_s:g} s and was interrupted"
        else:
            head = f"DVC stage '{stage}' failed (exit {returncode})"
        super().__init__(head + ":\n" + "\n".join(self.tail))

    @property
    def permanent(self) -> bool:
        """Whether a retry cannot help: a data validation stage rejected the data (not a timeout)."""
        return self.timeout_s is None and stage_group(self.stage) in PERMANENT_STAGE_GROUPS


class BadParams(DvcError):
    """params.yaml does not load: one line naming the file and the dotted key. No stage is run, nothing retried."""


def stage_group(stage: str) -> str:
    """`train@gaze` -> `train`; `sub/dvc.yaml:train@gaze` -> `train`."""
    return stage.rsplit(":", 1)[-1].split("@", 1)[0]


def retriable(error: BaseException) -> bool:
    """Whether a failed stage is worth another try: not when the data was rejected or the params are bad."""
    return not (isinstance(error, BadParams) or (isinstance(error, StageFailed) and error.permanent))


def check_params(repo_root: str | Path) -> None:
    """Load params.yaml as every stage will (simgan.config's strict loader) before any stage runs; BadParams with
    its one-line message when it does not load. A project without params.yaml (a plain DVC project) passes."""
    path = Path(repo_root).resolve() / "params.yaml"
    if not path.is_file() or not (Path(repo_root) / "simgan").is_dir():
        return
    from simgan.config import ConfigError, load_params

    try:
        load_params(path)
    except ConfigError as error:
        raise BadParams(str(error).strip().splitlines()[0]) from None


@dataclass(frozen=True)
class Stage:
    name: str  # DVC's address: `prepare@gaze`, or `sub/dvc.yaml:stage` outside the root dvc.yaml
    outs: tuple[str, ...]  # repo-relative paths of its outs, metrics and plots
    plots: tuple[str, ...] = ()  # top-level dvc.yaml `plots:` files that lie inside one of its outs


@dataclass(frozen=True)
class StageRun:
    stage: str
    ran: bool  # False: DVC found the stage up to date and skipped it
    seconds: float


def dvc_env() -> dict[str, str]:
    """The environment for DVC and the stage commands it starts: no analytics, unbuffered Python output, and
    this interpreter's bin/ first on PATH so a stage's `python -m simgan.stages...` is the venv's Python."""
    env = dict(os.environ)
    env["DVC_NO_ANALYTICS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    bin_dir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env


# --- the DAG -------------------------------------------------------------------------------------------


def pipeline_stages(repo_root: str | Path, targets: Iterable[str] | None = None) -> list[Stage]:
    """The dvc.yaml stages in the order to run them: all of them, or `targets` and everything upstream of them.

    A target is a stage (`train@gaze`, `dvc.yaml:train@gaze`, `sub/dvc.yaml:stage`) or a foreach group
    (`train`). Data sources (`data.dvc`) are not stages to run: they appear only as upstream nodes.
    """
    import networkx as nx
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    root = Path(repo_root).resolve()
    with Repo(str(root)) as repo:
        index = repo.index
        declared = {stage: position for position, stage in enumerate(index.stages)}
        graph = index.graph  # an edge runs from a stage to a stage it depends on
        address = {stage: _address(root, stage) for stage in index.stages if isinstance(stage, PipelineStage)}
        selected = set(declared) if targets is None else _with_upstream(root, address, graph, list(targets))
        ordered = nx.lexicographical_topological_sort(graph.reverse(copy=True), key=declared.__getitem__)
        plots = _top_level_plot_images(root, getattr(index, "_plots", {}))
        result = []
        for stage in ordered:
            if stage in selected and stage in address:
                outs = tuple(_relative(root, out.fs_path) for out in stage.outs)
                inside = tuple(p for p in plots if any(p == o or p.startswith(o.rstrip("/") + "/") for o in outs))
                result.append(Stage(address[stage], outs, inside))
        return result


def stage_order(repo_root: str | Path, targets: Iterable[str] | None = None) -> list[str]:
    return [stage.name for stage in pipeline_stages(repo_root, targets)]


def _address(root: Path, stage) -> str:
    """How `dvc repro` run in root names the stage (DVC's own `addressing` is relative to the process's cwd)."""
    dvcfile = _relative(root, stage.dvcfile.path)
    return stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{stage.name}"


def _with_upstream(root: Path, address: dict, graph, targets: list[str]) -> set:
    import networkx as nx

    chosen = set()
    for target in targets:
        wanted = target.removeprefix("dvc.yaml:")
        found = [stage for stage, name in address.items() if wanted in (name, name.split("@", 1)[0])]
        if not found:
            known = ", ".join(address.values())
            raise ValueError(f"no DVC stage or foreach group {target!r} in {root}; stages: {known}")
        for stage in found:
            chosen |= {stage} | nx.descendants(graph, stage)
    return chosen


def _top_level_plot_images(root: Path, plots_by_file: dict) -> list[str]:
    """PNG paths named in top-level `plots:` sections (a path, or a plot id that is a path), repo-relative."""
    images = []
    for dvcfile, entries in plots_by_file.items():
        base = Path(dvcfile).parent
        for entry in entries or []:
            names = [entry] if isinstance(entry, str) else list(entry) if isinstance(entry, dict) else []
            images += [_relative(root, base / name) for name in names if str(name).lower().endswith(IMAGE_SUFFIX)]
    return images


def _relative(root: Path, path: str | Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), root)).as_posix()


def stage_images(repo_root: str | Path, stage: Stage) -> list[str]:
    """Existing PNG files among a stage's outs/plots; a directory out contributes the PNGs inside it."""
    root = Path(repo_root).resolve()
    found: list[str] = []
    for name in dict.fromkeys(stage.outs + stage.plots):
        path = root / name
        if path.is_file() and path.suffix.lower() == IMAGE_SUFFIX:
            found.append(name)
        elif path.is_dir():
            found += [_relative(root, p) for p in sorted(path.rglob(f"*{IMAGE_SUFFIX}"))]
    return list(dict.fromkeys(found))[:MAX_IMAGES_PER_STAGE]


# --- running DVC --------------------------------------------------------------------------------------


def run_dvc(
    repo_root: str | Path, args: Iterable[str], *, log: Log = print, timeout_s: float | None = None
) -> tuple[int, list[str], bool]:
    """Run `dvc <args>` in repo_root, passing each output line (stdout and stderr, in order) to `log`.

    Returns (exit code, the last OUTPUT_TAIL_LINES non-empty lines, whether it was stopped by the timeout).
    DVC runs in its own process group: on timeout, or if the caller is interrupted (a Prefect timeout, a
    cancelled flow run), the group gets SIGINT — DVC then stops the stage and removes `.dvc/tmp/rwlock` —
    and SIGKILL if it is still there INTERRUPT_GRACE_S later. A DVC left running would hold the lock
    and make the retry fail with "is busy".
    """
    proc = subprocess.Popen(
        [*DVC, *args],
        cwd=Path(repo_root).resolve(),
        env=dvc_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    timed_out = threading.Event()

    def on_timeout() -> None:
        timed_out.set()
        _interrupt(proc)

    timer = threading.Timer(timeout_s, on_timeout) if timeout_s else None
    try:
        if timer:
            timer.daemon = True
            timer.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.strip():
                tail.append(line)
                log(line)
        returncode = proc.wait()
    finally:
        if timer:
            timer.cancel()
        if proc.poll() is None:
            _interrupt(proc)
        if proc.stdout:
            proc.stdout.close()
    return returncode, list(tail), timed_out.is_set()


def _interrupt(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    try:
        proc.wait(INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:  # whatever is left of the group: DVC if it ignored SIGINT, or a stage's children
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def repro_stage(repo_root: str | Path, stage: str, *, log: Log = print, timeout_s: float | None = None) -> StageRun:
    """`dvc repro -s <stage>`: run this one stage if DVC finds it stale, else skip it. Raises StageFailed."""
    start = time.monotonic()
    ran = False

    def watch(line: str) -> None:
        nonlocal ran
        ran = ran or line.startswith("Running stage ")
        log(line)

    returncode, tail, timed_out = run_dvc(repo_root, ["repro", "-s", stage], log=watch, timeout_s=timeout_s)
    if returncode != 0 or timed_out:
        raise StageFailed(stage, returncode, tail, timeout_s if timed_out else None)
    return StageRun(stage, ran, round(time.monotonic() - start, 3))


def _dvc_json(repo_root: str | Path, args: list[str]):
    proc = subprocess.run(
        [*DVC, *args, "--json"],
        check=False,
        cwd=Path(repo_root).resolve(),
        env=dvc_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise DvcError(
            f"`dvc {' '.join(args)} --json` failed in {repo_root} (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return json.loads(proc.stdout or "{}")


# --- metrics ------------------------------------------------------------------------------------------


def metrics(repo_root: str | Path) -> dict[str, float | int | bool | str]:
    """The workspace's metrics, as `dvc metrics show --json` gives them, flattened to
    `{"<file>:<dotted.key>": value}`. Read in process (`Repo.metrics.show`, 0.2 s rather than 0.8 s for the CLI).

    Files that do not exist yet (their stage has not run) are left out; lists are left out.
    """
    from dvc.repo import Repo

    with Repo(str(Path(repo_root).resolve())) as repo:
        shown = repo.metrics.show()
    flat: dict[str, float | int | bool | str] = {}
    for path, entry in sorted(shown.get("", {}).get("data", {}).items()):
        if isinstance(entry, dict) and isinstance(entry.get("data"), dict):
            _flatten(entry["data"], f"{path}:", flat)
    return flat


def _flatten(value, prefix: str, into: dict) -> None:
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict):
            _flatten(item, f"{name}.", into)
        elif isinstance(item, (int, float, bool, str)):
            into[name] = item


# --- data/ --------------------------------------------------------------------------------------------


def data_dvc_file(repo_root: str | Path, data: str = "data") -> Path:
    return Path(repo_root).resolve() / f"{data}.dvc"


def missing_data_hint(repo_root: str | Path) -> str | None:
    """One line naming the DVC-tracked data folders that are absent (a fresh clone) and what to run, or None.

    `dvc repro` itself can only say "failed to reproduce 'data.dvc': missing data 'source': data": DVC
    verifies .dvc data sources before any stage, so no stage of ours can speak first.
    """
    from dvc.utils.serialize import load_yaml

    root = Path(repo_root).resolve()
    missing = []
    for dvcfile in sorted(p for p in root.glob("*.dvc") if p.is_file()):
        for out in load_yaml(str(dvcfile)).get("outs") or []:
            if out.get("path") and not (root / out["path"]).exists():
                missing.append(out["path"])
    if not missing:
        return None
    return (
        f"{', '.join(m + '/' for m in missing)} is absent (tracked by DVC, not by git): render the embedded "
        f"default with `simgan simulate --out data` (or run `make demo`), or put your datasets there"
    )


def recorded_data_hash(repo_root: str | Path, data: str = "data") -> str | None:
    """The hash data.dvc records for data/ (DVC's md5 of the directory listing, `<md5>.dir`), None if untracked."""
    from dvc.utils.serialize import load_yaml

    path = data_dvc_file(repo_root, data)
    if not path.exists():
        return None
    outs = load_yaml(str(path)).get("outs") or []
    return outs[0].get("md5") if outs else None


def data_changed(repo_root: str | Path, data: str = "data") -> bool:
    """Whether data/ differs from what data.dvc records (`dvc status data.dvc`); True if data.dvc is missing.

    DVC keeps a hash cache keyed by file mtime and size, so an unchanged data/ is not re-read.
    """
    root = Path(repo_root).resolve()
    if not (root / data).exists():
        raise DvcError(
            f"{root / data} does not exist: render or copy the raw inputs there first "
            f"(e.g. `simgan simulate --out {data}`)"
        )
    if not data_dvc_file(root, data).exists():
        return True
    return bool(_dvc_json(root, ["status", f"{data}.dvc"]))


def track_data(repo_root: str | Path, data: str = "data", *, log: Log = print) -> str:
    """`dvc add data`: re-hash data/, rewrite data.dvc, cache the files. Returns the new hash."""
    returncode, tail, _ = run_dvc(repo_root, ["add", data], log=log)
    if returncode != 0:
        raise DvcError(f"`dvc add {data}` failed (exit {returncode}):\n" + "\n".join(tail))
    data_hash = recorded_data_hash(repo_root, data)
    assert data_hash, f"`dvc add {data}` wrote no hash into {data}.dvc"
    return data_hash


def git_commit(repo_root: str | Path) -> dict[str, str | bool | None]:
    """{"commit": HEAD or None, "dirty": uncommitted changes to tracked files (dvc.lock after a run counts)}."""
    root = Path(repo_root).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", *args], check=False, cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )

    try:
        head = git("rev-parse", "HEAD")
    except FileNotFoundError:  # no git on this machine
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}

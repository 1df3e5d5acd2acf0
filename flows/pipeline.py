"""Flow `pipeline`: run the stages of dvc.yaml as Prefect tasks, one at a time, in the DAG's order.

Each task is `dvc repro -s <stage>`, so DVC alone decides whether a stage is stale (and skips it if not) and
records what it produced in dvc.lock; Prefect adds retries, timeouts, DVC's output in the run logs, and
artifacts: a report (which stages ran, were skipped or failed), the metrics as a table, and the image
grids the stages declare as outs or plots. The stage list is read from dvc.yaml at every run
(`dvc_stages.pipeline_stages`), never written here.

Stages run sequentially: DVC takes a repository lock, and two `dvc repro` in one workspace fail with
"is busy". The first stage that fails stops the flow with its own error message; the stages after it
do not run. Re-running after a fix resumes there: the stages DVC finds up to date are skipped.

    python -m flows.pipeline [REPO_ROOT] [--target STAGE ...]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import dvc_stages


@task(name="dvc-stage", cache_policy=NO_CACHE)
def run_stage(repo_root: str, stage: str, timeout_s: float | None = None) -> dict:
    """`dvc repro -s <stage>` with DVC's output in this task run's log. The timeout is enforced here, not by
    Prefect: Prefect cannot stop a blocking subprocess in a worker thread, and DVC must be interrupted
    (not abandoned) so that it releases its lock before a retry."""
    logger = get_run_logger()
    run = dvc_stages.repro_stage(repo_root, stage, log=logger.info, timeout_s=timeout_s)
    logger.info("stage %s %s in %.1f s", stage, "ran" if run.ran else "was up to date (skipped by DVC)", run.seconds)
    return asdict(run)


def _retry_unless_permanent(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: a stage that rejected the data (validate, validate_refined) fails at once;
    re-running the same suite on the same data cannot pass. Timeouts and other failures are retried."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # no result to read: retry, as Prefect would without this function
            return True
    if isinstance(error, BaseException) and not dvc_stages.retriable(error):
        try:
            get_run_logger().info("not retried: %s", str(error).splitlines()[0])
        except Exception:  # no run context to log into
            pass
        return False
    return True


def _for_stage(overrides: dict | None, stage: str, default):
    """A per-stage setting: by full name (`train@gaze`), else by foreach group (`train`), else the default."""
    overrides = overrides or {}
    name = stage.rsplit(":", 1)[-1]
    for key in (stage, name, name.split("@", 1)[0]):
        if key in overrides:
            return overrides[key]
    return default


@flow(name="pipeline")
def pipeline(
    repo_root: str = ".",
    targets: list[str] | None = None,
    retries: int = 0,
    retry_delay_seconds: float = 10.0,
    timeout_s: float | None = None,
    stage_retries: dict[str, int] | None = None,
    stage_timeouts: dict[str, float] | None = None,
) -> dict:
    """Run the DVC pipeline in `repo_root`, one task per dvc.yaml stage.

    targets: stage names as `dvc repro` takes them (`train@gaze`, `train`); runs them and everything upstream.
        None runs every stage.
    retries, retry_delay_seconds: Prefect retries of a failed stage.
    timeout_s: a stage still running after this many seconds is interrupted and fails (None: no limit).
    stage_retries, stage_timeouts: per-stage values, keyed by stage (`train@gaze`) or foreach group (`train`).

    Returns {"repo_root", "stages": [{"stage", "ran", "seconds"}], "metrics": {"<file>:<key>": value},
    "images": {stage: [png paths]}}.
    """
    logger = get_run_logger()
    root = str(Path(repo_root).resolve())
    if hint := dvc_stages.missing_data_hint(root):
        raise dvc_stages.DvcError(hint)
    dvc_stages.check_params(root)  # bad params fail here, once, before any stage (and are never retried)
    stages = dvc_stages.pipeline_stages(root, targets)
    logger.info("%d DVC stages in %s, in order: %s", len(stages), root, ", ".join(s.name for s in stages))

    runs: list[dict] = []
    failed: tuple[str, str] | None = None
    try:
        for stage in stages:
            configured = run_stage.with_options(
                task_run_name=stage.name,
                retries=_for_stage(stage_retries, stage.name, retries),
                retry_delay_seconds=retry_delay_seconds,
                retry_condition_fn=_retry_unless_permanent,
            )
            try:
                runs.append(configured(root, stage.name, _for_stage(stage_timeouts, stage.name, timeout_s)))
            except Exception as exc:
                failed = (stage.name, str(exc))
                raise
    finally:
        summary = _publish(root, stages, runs, failed)
    return summary


def _publish(root: str, stages: list[dvc_stages.Stage], runs: list[dict], failed: tuple[str, str] | None) -> dict:
    """Artifacts of this run: `pipeline-report` (markdown), `pipeline-metrics` (table), `pipeline-images`.

    Also published when a stage failed (then the report says which); a failure to publish is logged, never
    raised, so that it cannot hide the stage's own error.
    """
    logger = get_run_logger()
    summary: dict = {"repo_root": root, "stages": runs, "metrics": {}, "images": {}}
    try:
        summary["metrics"] = dvc_stages.metrics(root)
        summary["images"] = {s.name: imgs for s in stages if (imgs := dvc_stages.stage_images(root, s))}
        create_markdown_artifact(
            key="pipeline-report",
            markdown=_report(root, stages, runs, failed, summary),
            description=f"DVC pipeline in {root}",
        )
        create_table_artifact(
            key="pipeline-metrics",
            table=[
                {"file": name.split(":", 1)[0], "metric": name.split(":", 1)[1], "value": value}
                for name, value in summary["metrics"].items()
            ],
            description=f"`dvc metrics show` in {root}",
        )
        if summary["images"]:
            create_markdown_artifact(
                key="pipeline-images",
                markdown=_images(root, summary["images"]),
                description=f"image grids declared in {root}/dvc.yaml",
            )
    except Exception as exc:
        logger.warning("could not publish the pipeline artifacts: %s: %s", type(exc).__name__, exc)
    return summary


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _report(root: str, stages, runs: list[dict], failed: tuple[str, str] | None, summary: dict) -> str:
    by_stage = {run["stage"]: run for run in runs}
    lines = [
        f"# DVC pipeline in `{root}`",
        "",
        f"**{'failed at ' + failed[0] if failed else 'succeeded'}**",
        "",
        "| # | stage | result | seconds |",
        "|---|---|---|---|",
    ]
    for number, stage in enumerate(stages, 1):
        run = by_stage.get(stage.name)
        if run:
            result, seconds = ("ran" if run["ran"] else "up to date (skipped by DVC)"), f"{run['seconds']:.1f}"
        elif failed and failed[0] == stage.name:
            result, seconds = "**failed**", ""
        else:
            result, seconds = "not run", ""
        lines.append(f"| {number} | `{stage.name}` | {result} | {seconds} |")
    if failed:
        lines += ["", f"## Error in `{failed[0]}`", "", "```", failed[1], "```"]
    lines += ["", "## Metrics (`dvc metrics show`)", ""]
    if summary["metrics"]:
        lines += ["| file | metric | value |", "|---|---|---|"]
        lines += [
            f"| `{_cell(name.split(':', 1)[0])}` | {_cell(name.split(':', 1)[1])} | {_cell(value)} |"
            for name, value in summary["metrics"].items()
        ]
    else:
        lines.append("No metrics yet.")
    if summary["images"]:
        lines += ["", "Image grids: see the `pipeline-images` artifact."]
    return "\n".join(lines) + "\n"


THUMBNAIL_PX = 360  # longest side of a picture in the `pipeline-images` artifact
THUMBNAIL_MAX_BYTES = 120_000  # per picture, as PNG, before base64: the artifact is stored in the server's database


def thumbnail_uri(path: str | Path, size: int = THUMBNAIL_PX) -> str | None:
    """A small PNG of the image at `path` as a `data:image/png;base64,...` URI, or None when it cannot be read.

    The Prefect UI renders a markdown artifact in the browser, which cannot open files on the flow's machine
    (a `file://` or repository path shows nothing); a data: URI carries the picture inside the artifact, and the
    UI's sanitizer (DOMPurify) keeps data: URIs on images. Shrunk (never enlarged) to `size` pixels on its
    longest side, and dropped rather than bloating the server's database when still over THUMBNAIL_MAX_BYTES.
    """
    import base64
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            picture.thumbnail((size, size), Image.Resampling.LANCZOS)
            if picture.mode not in ("L", "RGB", "RGBA"):
                picture = picture.convert("RGBA" if "A" in picture.getbands() else "RGB")
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG", optimize=True)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    if buffer.tell() > THUMBNAIL_MAX_BYTES:
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _images(root: str, images: dict[str, list[str]]) -> str:
    """Each picture embedded as a thumbnail (a data: URI, see `thumbnail_uri`), under its repository path."""
    lines = [f"# Image grids in `{root}`", ""]
    for stage, paths in images.items():
        lines += [f"## `{stage}`", ""]
        for path in paths:
            uri = thumbnail_uri(Path(root) / path)
            picture = f"![{stage}: {path}]({uri})" if uri else "(not an image this machine can read, or too large)"
            lines += [f"`{path}`", "", picture, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("repo_root", nargs="?", default=".")
    parser.add_argument("--target", action="append", dest="targets", help="a stage or foreach group (repeatable)")
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--timeout-s", type=float, default=None)
    args = parser.parse_args(argv)
    pipeline(repo_root=args.repo_root, targets=args.targets, retries=args.retries, timeout_s=args.timeout_s)


if __name__ == "__main__":
    main()

"""Prefect flows that orchestrate the DVC pipeline: DVC is the record, Prefect runs its stages.

    dvc_stages.py   plain helpers: stage order from dvc.yaml, `dvc repro -s`, metrics, the data/ hash
    pipeline.py     flow `pipeline`: one task per dvc.yaml stage, in DAG order, with artifacts
    retrain.py      flow `retrain`: skip when data/ is unchanged, else `dvc add data`, pipeline, promote or refuse
prefect.yaml (repository root) deploys `retrain` on a cron schedule; docs/orchestration.md has the commands.
"""

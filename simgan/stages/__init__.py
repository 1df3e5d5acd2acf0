"""Thin stage entry points run by dvc.yaml: parse, load config, call the library, write.

Each is `python -m simgan.stages.<stage> --task <gaze|hand>`; paths come from `simgan.layout`,
hyperparameters from `params.yaml` through `simgan.config`. No stage imports another (what they share is
in `simgan.stages.common` or the library); only the package stage imports bentoml, and great_expectations
is reached through `simgan.validation` alone.
"""

"""Thin stage entry points run by dvc.yaml: parse, load config, call the library, write.

Each is `python -m simgan.stages.<stage> --task <gaze|hand>`; paths come from `simgan.layout`,
hyperparameters from `params.yaml` through `simgan.config`. Stages may import great_expectations
(validate only) and bentoml (package only); the rest of simgan never does.
"""

"""The one way a config is declared in simgan: a frozen dataclass validated by pydantic on construction.

Each field is declared once, with its type, its bounds and its meaning and unit (`Field(description=…)`
or the class docstring), and that declaration is the schema everywhere the value is used: built in
Python by the library, or read from params.yaml by `simgan.config`. Validation is strict (no "32" for
32, no "yes" for true), refuses unknown keys and non-finite floats (`lr: .inf` would train a NaN loss),
and runs once, when the object is built; `__post_init__` adds the checks that involve several fields.

    @schema
    class RefinerConfig:
        width: Annotated[int, Field(ge=1, description="feature maps of every k×k conv")] = 64

`Tuple` marks a field that YAML and checkpoints may give as a list: it is turned into a tuple (nested
too) before the strict check, so the frozen object stays hashable and equal to its saved form.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from pydantic import BeforeValidator, ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=False)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(item) for item in value) if isinstance(value, list | tuple) else value


Tuple = BeforeValidator(_tuples)
"""Annotate a tuple field with it: `Annotated[tuple[int, int], Tuple]` accepts [35, 55] from YAML."""


def schema(cls):
    """Make `cls` a frozen, strictly validated dataclass with `to_dict()` (plain values, for checkpoints)."""
    cls.to_dict = lambda self: asdict(self)
    return dataclass(frozen=True, config=STRICT)(cls)


def field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def problems(error: ValidationError, prefix: str = "") -> list[str]:
    """pydantic's errors as 'dotted.key: message (got value)' lines, `prefix` naming where the object sits."""
    lines = []
    for e in error.errors():
        key = ".".join(str(part) for part in (prefix, *e["loc"]) if part != "")
        message = e["msg"].removeprefix("Value error, ")
        shown = e.get("input")
        got = f" (got {shown!r})" if e["type"] not in ("missing", "value_error") and not isinstance(shown, dict) else ""
        lines.append(f"{key or '(top level)'}: {message}{got}")
    return lines

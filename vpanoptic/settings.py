"""Typed settings: a frozen dataclass built from a YAML mapping, checked key by key.

The types of the fields drive the checks (bool, int, float, str, tuples, dicts, optional
and union types, nested dataclasses); the dataclass's own ``__post_init__`` checks ranges.
`vpanoptic.config` builds its `RunConfig` with it; other specs (an experiment's tracker
settings) use it for their sections.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError

__all__ = ["from_mapping"]


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one YAML value against a dataclass field type."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else ConfigError(
            f"{key} is {value!r}; expected {' or '.join(_type_name(a) for a in args)}"
        )
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} is {value!r}; expected a list")
        (item_tp, _) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} is {value!r}; expected a mapping")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} is {value!r}; expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} is {value!r}; expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key} is {value!r}; expected a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} is {value!r}; expected a string")
    raise TypeError(f"unsupported config field type {tp} for {key}")


def _unknown_key(key: str, known: Sequence[str]) -> ConfigError:
    prefix, _, last = key.rpartition(".")
    close = difflib.get_close_matches(last, known, n=1)
    hint = f"; did you mean {(prefix + '.' if prefix else '') + close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{hint} (known: {', '.join(known)})")


def from_mapping(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """An instance of the dataclass `cls` from `data`, checked key by key.

    Nested dataclass fields take nested mappings; `prefix` names the section in messages
    (e.g. ``"tracker."``). Raises `ConfigError` (one line) for an unknown key (with the
    nearest known one), a value of the wrong type, or what the dataclass itself rejects.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping; got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise _unknown_key(full, list(fields))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = from_mapping(typing.cast(type, tp), value or {}, f"{full}.")
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)

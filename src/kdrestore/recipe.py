"""Typed YAML recipes, the machinery under :mod:`kdrestore.config`: reading (``base:`` chains), ``--set``
overrides, environment variables in paths, durations, and the validation of plain mappings into dataclasses
with errors that name the file, the dotted field and a "did you mean". Nothing in a recipe is evaluated.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from .errors import KdrestoreError


class ConfigError(KdrestoreError, ValueError):
    """A configuration that does not validate; the message names the file and the field."""


def plain_data(obj: Any) -> Any:
    """Tuples to lists, all the way down (what YAML and JSON write back)."""
    if isinstance(obj, dict):
        return {k: plain_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain_data(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str, source: str) -> Any:
    """Check/convert ``value`` against the annotation ``tp``; raise ConfigError naming the field."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, where, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{source}: {where}: bad value {value!r}")
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: {where} must be one of {list(args)}, got {value!r}{hint}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, where, source)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {where} must be a list, got {value!r}")
        return [_convert(v, args[0], f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{source}: {where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{where}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {where} must be a mapping, got {value!r}")
        return dict(value)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 2e-4 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{source}: {where} must be {_type_name(tp)}, got {value!r}")


def build_section(cls: type, data: Any, where: str, source: str = "<config>") -> Any:
    """Validate a mapping into the dataclass ``cls``; errors name ``source`` and the dotted field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where or 'the top level'} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(names)})"
            raise ConfigError(f"{source}: unknown key '{dotted}'{hint}")
        kwargs[key] = _convert(value, hints[key], dotted, source)
    return cls(**kwargs)


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML scalars/lists) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: expected key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: '{key}' goes through a non-mapping field")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def parse_duration(text: str, where: str = "duration") -> float:
    """Seconds in ``"90s"``, ``"8m"``, ``"2h"``, ``"1h30m"`` or a plain number of seconds."""
    s = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return float(s)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", s)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([hms])", "", s).strip():
        raise ConfigError(f"{where}: expected a duration like '90s', '8m', '2h' or '1h30m', got {text!r}")
    return sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u] for v, u in parts)


def read_recipe(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML recipe; a top-level ``base: other.yaml`` (relative to the file) is merged under it."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}" + (f" (base of {_seen[-1]})" if _seen else ""))
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections")
    base = data.pop("base", None)
    if base is None:
        return data
    return _merge(read_recipe(path.parent / str(base), (*_seen, path.resolve())), data)


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def expand_env(value: str, where: str) -> str:
    """Expand ``$VAR``/``${VAR}`` (e.g. ``${KDRESTORE_DATA}``); an unset variable is an error."""
    expanded = os.path.expandvars(value)
    if "$" in expanded:
        raise ConfigError(f"{where}: environment variable in {value!r} is not set")
    return expanded


def config_differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config dicts."""
    diffs = []
    for key in sorted(set(a) | set(b)):
        dotted = f"{prefix}{key}"
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            diffs += config_differences(va, vb, dotted + ".")
        elif va != vb:
            diffs.append(f"{dotted}: {va!r} -> {vb!r}")
    return diffs

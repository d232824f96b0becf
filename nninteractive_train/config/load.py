"""Load a RunConfig from YAML plus ``section.key=value`` overrides; strict about unknown keys and types."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from pathlib import Path
from typing import Any

import yaml

from nninteractive_train.config.schema import RunConfig
from nninteractive_train.errors import UserError
from nninteractive_train.files import atomic_write_text


class ConfigError(UserError):
    """A config file or override names an unknown key or a value of the wrong type (``file``: the YAML file)."""


def did_you_mean(word: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known`` (difflib ratio >= 0.6), else the known names."""
    known = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(word), known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (a small subset: scalars, lists, dicts, Optional)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(tp, value, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the config'}: expected a mapping of keys to values, got {data!r}")
    types = _field_types(cls)
    unknown = sorted(set(data) - set(types), key=str)
    if unknown:
        section = f"{where}: " if where else ""
        names = ", ".join(f"{k!r}{did_you_mean(k, types)}" for k in unknown)
        raise ConfigError(f"{section}unknown key{'s' if len(unknown) > 1 else ''} {names}")
    kwargs = {k: _coerce(v, types[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: {p} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value``; the value is parsed as YAML (``3``, ``0.5``, ``[1,2]``, ``true``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: cannot parse value: {e}") from e
    return key.strip(), value


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple = ()) -> RunConfig:
    """Read ``path`` (YAML; None = all defaults), apply overrides, validate, and return the RunConfig."""
    tree: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path}: invalid YAML: {e}") from e
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
    for ov in overrides:
        key, value = parse_override(ov)
        _check_override(key, value, ov)
        _set_path(tree, key, value)
    try:
        cfg = _build(RunConfig, tree, "")
        validate(cfg)
    except ConfigError as e:
        raise ConfigError(e.what, path, e.hint) from None
    return cfg


def _check_override(dotted: str, value: Any, override: str) -> None:
    """An override's key must name a field of the schema (with a suggestion for a misspelt one) and its value
    must fit the field's type: the error names the override, not the YAML file."""
    cls = RunConfig
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if typing.get_origin(cls) is dict:  # a mapping field (e.g. interaction.agent_weights) takes any key
            return
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(f"override {override!r}: {'.'.join(parts[:i])} is not a section")
        types = _field_types(cls)
        if part not in types:
            where = ".".join(parts[:i]) or "the config"
            raise ConfigError(f"override {override!r}: unknown key {part!r} in {where}{did_you_mean(part, types)}")
        cls = types[part]
    try:
        _coerce(value, cls, dotted)
    except ConfigError as e:
        raise ConfigError(f"override {override!r}: {e.what}") from None


OPTIMIZERS = ("sgd", "adamw")


def validate(cfg: RunConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    if len(cfg.model.patch_size) != 3 or min(cfg.model.patch_size) < 8:
        raise ConfigError(f"model.patch_size must be 3 values >= 8, got {cfg.model.patch_size}")
    if cfg.model.global_batch_size < 1:
        raise ConfigError("model.global_batch_size must be >= 1")
    if cfg.training.val_iterations_per_epoch < 1 or cfg.training.iterations_per_epoch < 1:
        raise ConfigError("training.iterations_per_epoch and training.val_iterations_per_epoch must be >= 1")
    if not 0 < cfg.interaction.decay <= 1:
        raise ConfigError(f"interaction.decay must be in (0, 1], got {cfg.interaction.decay}")
    for k in ("p_followup_start", "p_followup_end"):
        v = getattr(cfg.interaction, k)
        if not 0 <= v <= 1:
            raise ConfigError(f"interaction.{k} must be in [0, 1], got {v}")
    if not (math.isfinite(cfg.interaction.slice_power) and cfg.interaction.slice_power >= 0):
        raise ConfigError(f"interaction.slice_power must be a number >= 0, got {cfg.interaction.slice_power}")
    bad = set(cfg.interaction.kinds) - {"point", "bbox", "lasso", "scribble"}
    if bad or not cfg.interaction.kinds:
        raise ConfigError(f"interaction.kinds must be a non-empty subset of point/bbox/lasso/scribble, got {bad}")
    if cfg.training.warmup_epochs < 0 or cfg.training.freeze_encoder_epochs < 0:
        raise ConfigError("training.warmup_epochs and training.freeze_encoder_epochs must be >= 0")
    ema = cfg.training.ema_decay
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 < ema < 1):
        raise ConfigError(f"training.ema_decay must be a number between 0 and 1 (exclusive) or null, got {ema!r}")
    if cfg.training.optimizer not in OPTIMIZERS:
        raise ConfigError(f"training.optimizer must be one of {list(OPTIMIZERS)}, got {cfg.training.optimizer!r}")
    if not math.isfinite(cfg.data.object_size_power):
        raise ConfigError(f"data.object_size_power must be a finite number, got {cfg.data.object_size_power}")
    if cfg.model.layout_spacing is not None and (len(cfg.model.layout_spacing) != 3
                                                 or not all(0 < v < math.inf for v in cfg.model.layout_spacing)):
        raise ConfigError(f"model.layout_spacing must be 3 positive numbers (mm) or null, got {cfg.model.layout_spacing}")
    if cfg.training.fold != "all" and not str(cfg.training.fold).isdigit():
        raise ConfigError(f"training.fold must be an integer or 'all', got {cfg.training.fold!r}")


def to_dict(cfg: RunConfig) -> dict:
    return dataclasses.asdict(cfg)


def from_dict(data: dict) -> RunConfig:
    cfg = _build(RunConfig, data, "")
    validate(cfg)
    return cfg


def save_config(cfg: RunConfig, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    atomic_write_text(path, text)

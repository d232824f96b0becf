"""The run folder's config is the truth: what a resume may change, the differences between two configs, and
the config hash stored with every checkpoint."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Iterable

from nninteractive_train.config.load import ConfigError, from_dict, to_dict
from nninteractive_train.config.schema import RunConfig

CHANGEABLE_ON_RESUME = (
    "name",
    "training.num_epochs",
    "training.save_every",
    "training.num_data_workers",
    "training.dist_timeout_s",
    "training.checkpoint_followups",
    "training.log_steps",
    "training.compile",
    "training.interactive_val_every",
    "training.interactive_val_cases",
    "training.interactive_val_objects",
    "training.interactive_val_steps",
    "interaction.num_sim_workers",
)
"""Keys that ``--allow-config-change`` may change on a resume: the length of the run, how often it saves and
validates, and how many processes do the work. Everything else (network, data, sampling, optimiser, seeds)
defines the experiment and cannot change under a running one."""

# set once at the start of a run from --pretrained; a config given again on resume leaves them empty
_DERIVED = ("model.architecture", "model.pretrained", "model.export_patch_size")
# decided by nnU-Net's environment variables (nnUNet_compile, nnUNet_n_proc_DA; nnunet_env.apply_env), whose
# values at the start are what config.yaml records: a YAML given again does not know them
ENVIRONMENT_KEYS = ("training.compile", "training.num_data_workers")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; only mappings are descended (lists and None are leaves)."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key not in _DERIVED:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(a: RunConfig | dict, b: RunConfig | dict) -> list[str]:
    """Dotted keys whose values differ between two configs, sorted (``[]`` when equal)."""
    fa = flatten(a if isinstance(a, dict) else to_dict(a))
    fb = flatten(b if isinstance(b, dict) else to_dict(b))
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


def config_hash(cfg: RunConfig | dict) -> str:
    """16 hex digits of SHA-256 over the config's canonical JSON: equal configs, equal hashes."""
    tree = cfg if isinstance(cfg, dict) else to_dict(cfg)
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _get(tree: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree[part]
    tree[last] = value


def resume_config(saved: RunConfig, given: RunConfig | None, allow: Iterable[str] = (),
                  where: str = "config.yaml") -> RunConfig:
    """The config a resumed run uses: ``saved`` (the run folder's), with the keys in ``allow`` taken from
    ``given`` (the config given on the command line, None = none given).

    Fields set at the start of a run from ``--pretrained`` (``model.architecture``, ``model.pretrained``,
    ``model.export_patch_size``) count as equal when ``given`` leaves them empty, and the keys that nnU-Net's
    environment variables decide (``ENVIRONMENT_KEYS``) are not compared: the run's values hold unless allowed
    (the variables themselves still apply on top, ``nnunet_env.apply_env``).

    Raises:
        ConfigError: ``given`` differs in keys not in ``allow`` (all of them listed, with both values), or
            ``allow`` names a key outside ``CHANGEABLE_ON_RESUME`` or not in the schema.
    """
    allow = list(dict.fromkeys(allow))
    saved_tree = to_dict(saved)
    known = flatten(saved_tree)
    for key in allow:
        if key not in known:
            raise ConfigError(f"--allow-config-change {key}: no such config key")
        if key not in CHANGEABLE_ON_RESUME:
            raise ConfigError(f"--allow-config-change {key}: this key defines the experiment and cannot change on "
                              f"resume", hint=f"changeable: {', '.join(CHANGEABLE_ON_RESUME)}")
    if given is None:
        return copy.deepcopy(saved)
    given_tree = to_dict(given)
    for key in _DERIVED:
        if _get(given_tree, key) is None:
            _set(given_tree, key, copy.deepcopy(_get(saved_tree, key)))
    for key in ENVIRONMENT_KEYS:
        if key not in allow:
            _set(given_tree, key, copy.deepcopy(_get(saved_tree, key)))
    diff = config_diff(saved_tree, given_tree)
    bad = [k for k in diff if k not in allow]
    if bad:
        fs, fg = flatten(saved_tree), flatten(given_tree)
        lines = "; ".join(f"{k}: run {fs.get(k)!r}, given {fg.get(k)!r}" for k in bad)
        changeable = ", ".join(CHANGEABLE_ON_RESUME)
        raise ConfigError(f"the config given differs from the run's in {len(bad)} key(s): {lines}", where,
                          hint=f"a resume uses the run folder's config: give no --config (or the same one), or allow "
                               f"a change with --allow-config-change KEY (changeable: {changeable})")
    for key in diff:
        _set(saved_tree, key, copy.deepcopy(_get(given_tree, key)))
    return from_dict(saved_tree)

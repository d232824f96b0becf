"""Run configuration (dataclasses + YAML + command-line overrides)."""

from nninteractive_train.config.load import (
    ConfigError,
    from_dict,
    load_config,
    save_config,
    to_dict,
)
from nninteractive_train.config.resume import CHANGEABLE_ON_RESUME, config_diff, config_hash, resume_config
from nninteractive_train.config.schema import (
    DataConfig,
    InteractionConfig,
    ModelConfig,
    RunConfig,
    TrainingConfig,
)

__all__ = [
    "ConfigError", "DataConfig", "InteractionConfig", "ModelConfig", "RunConfig", "TrainingConfig",
    "from_dict", "load_config", "save_config", "to_dict", "CHANGEABLE_ON_RESUME", "config_diff", "config_hash",
    "resume_config",
]

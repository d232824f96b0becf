"""Export to the model-folder layout of the ``nninteractive`` inference package."""

from nninteractive_train.export.model_folder import STUB_TRAINER, export_run, inference_info, write_model_folder

__all__ = ["STUB_TRAINER", "export_run", "inference_info", "write_model_folder"]

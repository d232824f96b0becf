"""The interactive configuration's network layout: nnU-Net's rule on the data's spacing, or on
``model.layout_spacing`` when set."""

from __future__ import annotations

import pytest

from nninteractive_train.config import ModelConfig
from nninteractive_train.planning.plans import interactive_configuration, stage_layout, total_stride

BASE = {"spacing": [2.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
        "architecture": {"network_class_name": "ResEncUNet", "arch_kwargs": {"n_stages": 1}}}


def _model(**kw) -> ModelConfig:
    return ModelConfig(patch_size=[64, 96, 96], global_batch_size=1, base_features=8, max_features=64,
                       blocks_per_stage=[1, 2, 2, 2, 2], max_stages=5, **kw)


@pytest.mark.parametrize("layout_spacing, first_kernel, second_stride", [
    (None, [1, 3, 3], [1, 2, 2]),  # 2 x 1 x 1 mm: nnU-Net's anisotropic start
    ([1.0, 1.0, 1.0], [3, 3, 3], [2, 2, 2]),
    ([1.5, 1.0, 1.0], [3, 3, 3], [2, 2, 2]),  # less than twice as coarse: isotropic
])
def test_layout_follows_the_layout_spacing(layout_spacing, first_kernel, second_stride):
    conf = interactive_configuration(BASE, _model(layout_spacing=layout_spacing))
    kw = conf["architecture"]["arch_kwargs"]
    assert kw["kernel_sizes"][0] == first_kernel and kw["strides"][1] == second_stride
    assert kw["n_stages"] == len(kw["strides"]) == len(kw["kernel_sizes"]) == 5
    assert kw["features_per_stage"] == [8, 16, 32, 64, 64]
    assert all(p % s == 0 for p, s in zip(conf["patch_size"], total_stride(conf["architecture"])))
    assert BASE["architecture"]["arch_kwargs"] == {"n_stages": 1}  # the plans' entry is not modified


def test_layout_matches_nnunets_planner_on_the_data_spacing():
    conf = interactive_configuration(BASE, _model())
    strides, kernels = stage_layout([64, 96, 96], [2.0, 1.0, 1.0], 5)
    assert conf["architecture"]["arch_kwargs"]["strides"] == strides
    assert conf["architecture"]["arch_kwargs"]["kernel_sizes"] == kernels


def test_unpoolable_patch_names_nnunets_patch():
    with pytest.raises(ValueError, match="cannot be pooled evenly"):
        stage_layout([60, 96, 96], [1.0, 1.0, 1.0], 5)

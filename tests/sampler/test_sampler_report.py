"""The sampling report: exact shares add up, empirical columns and chi-square appear with draws."""

import numpy as np
import pytest

from nninteractive_train.sampler.fake import fake_manifest
from nninteractive_train.sampler.report import format_markdown, sampling_report


@pytest.fixture(scope="module")
def manifest():
    return fake_manifest(n_datasets=5, n_cases=50, n_objects=200, override_every=2, rng=np.random.default_rng(1))


def test_expected_shares_add_up(manifest):
    sv = np.arange(manifest.n_cases) % 3
    rep = sampling_report(manifest, sv)
    assert "draws" not in rep and rep["cases"] == 50 and rep["objects"] == 200
    assert sum(r["expected_share"] for r in rep["datasets"]) == pytest.approx(1.0)
    assert sum(r["expected_share"] for r in rep["case_shares"]) == pytest.approx(1.0)
    objects = sum(r["expected_share"] for r in rep["object_types"])
    assert objects + rep["expected_supervoxel_share"] == pytest.approx(1.0)
    assert sum(r["expected_supervoxel_share"] for r in rep["datasets"]) == pytest.approx(
        rep["expected_supervoxel_share"])
    assert sum(r["cases"] for r in rep["datasets"]) == 50
    assert [r["override"] for r in rep["object_types"][:3]] == [0.25, 0.5, 0.25]


def test_empirical_columns(manifest):
    rep = sampling_report(manifest, None, draws=20_000, seed=3)
    assert rep["empirical_supervoxel_share"] == 0.0 == rep["expected_supervoxel_share"]
    assert sum(r["empirical_share"] for r in rep["datasets"]) == pytest.approx(1.0)
    assert rep["chi2"]["dataset"]["p_value"] > 1e-3 and rep["chi2"]["case"]["dof"] == 49
    md = format_markdown(rep, top=3)
    assert md.count("\n| D0") >= 5 and "empirical" in md and "the 3 most and 3 least likely" in md
    assert len([ln for ln in md.splitlines() if ln.startswith("| c") and "| D" in ln]) == 6


def test_size_power_shifts_object_types_not_cases(manifest):
    plain, sized = sampling_report(manifest, None), sampling_report(manifest, None, size_power=1.0, draws=5_000)
    assert [r["expected_share"] for r in sized["case_shares"]] == pytest.approx(
        [r["expected_share"] for r in plain["case_shares"]])
    assert sum(r["expected_share"] for r in sized["object_types"]) == pytest.approx(1.0)
    assert [r["expected_share"] for r in sized["object_types"]] != pytest.approx(
        [r["expected_share"] for r in plain["object_types"]])
    assert sized["object_size_power"] == 1.0 and "voxels^1" in format_markdown(sized)
    assert "voxels^" not in format_markdown(plain)

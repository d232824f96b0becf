"""The SegFM3D challenge's rules (evaluation/segfm3d.py) against its own evaluation code.

CLICK_REFERENCE, BOX_REFERENCE and MULTI_CLASS_REFERENCE were produced once (2026) by running the challenge's
unchanged functions from JunMa11/CVPR-MedSegFMCompetition at 748e862 (``compute_edt``, ``sample_coord``,
``compute_multi_class_dsc``, ``compute_multi_class_nsd`` taken out of CVPR25_iter_eval.py with ``ast``; the
click is the body of its per-class loop; ``mask3D_to_bbox`` of get_boxes.py with ``np.random.randint``
returning the given shift) on exactly the arrays built here, on CPU (its scipy EDT path), in the challenge's
pinned environment (numpy 1.26.3, scipy 1.12.0, connected-components-3d 3.12.4, pandas 2.2.1, scikit-image
0.22.0) and again with this project's (numpy 2.4, scipy 1.17, cc3d 4.1): identical. LARGE_ROI_REFERENCE is the
same with the script's 60,000,000-voxel threshold of the half-resolution EDT lowered to 1,000.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.integrate import cumulative_trapezoid

import nninteractive_train.evaluation.segfm3d as segfm3d
from nninteractive_train.evaluation.segfm3d import (box_to_prompt, case_metrics, challenge_auc, challenge_box,
                                                    challenge_classes, challenge_click, multi_class_dsc,
                                                    multi_class_nsd)


def cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def blobs(seed, shape=(14, 16, 15)):
    rng = np.random.default_rng(seed)
    gt = ndimage.gaussian_filter(rng.normal(size=shape), 1.5) > 0
    pred = ndimage.gaussian_filter(rng.normal(size=shape), 1.5) > 0.1
    return gt, pred


C12 = (12, 12, 12)
CLICK_CASES = {  # name: (target, prediction)
    "odd_cube_fn": (cube(C12, (3, 3, 3), (8, 8, 8)), np.zeros(C12, bool)),  # one EDT maximum
    "even_cube_fn_ties": (cube(C12, (2, 2, 2), (6, 6, 6)), np.zeros(C12, bool)),  # 8 tied maxima
    "flat_fn_ties": (cube((6, 20, 20), (2, 3, 3), (4, 15, 11)), np.zeros((6, 20, 20), bool)),
    "fp_larger": (cube(C12, (2, 2, 2), (6, 6, 6)),  # the FP blob is the largest error: a negative click
                  cube(C12, (2, 2, 2), (6, 6, 6)) | cube(C12, (7, 6, 6), (12, 12, 12))),
    "border_fn": (cube((10, 10, 10), (0, 0, 0), (7, 4, 10)), np.zeros((10, 10, 10), bool)),  # touches the border
    "equal_sizes": (cube((10, 10, 10), (6, 6, 6), (9, 9, 9)) | cube((10, 10, 10), (0, 0, 0), (3, 3, 3)),
                    np.zeros((10, 10, 10), bool)),
    "one_voxel_fp": (cube((5, 5, 5), (1, 1, 1), (3, 3, 3)),
                     cube((5, 5, 5), (1, 1, 1), (3, 3, 3)) | cube((5, 5, 5), (4, 4, 4), (5, 5, 5))),
    "shell_error": (cube(C12, (1, 1, 1), (11, 11, 11)), cube(C12, (2, 2, 2), (10, 10, 10))),
    **{f"blobs_{s}": blobs(s) for s in range(6)},
}
CLICK_REFERENCE = {  # name: ((z, y, x), positive), from the challenge's code (see the docstring)
    "odd_cube_fn": ((5, 5, 5), True),
    "even_cube_fn_ties": ((4, 4, 3), True),
    "flat_fn_ties": ((3, 3, 9), True),
    "fp_larger": ((9, 9, 8), False),
    "border_fn": ((4, 1, 4), True),
    "equal_sizes": ((1, 1, 1), True),
    "one_voxel_fp": ((4, 4, 4), False),
    "shell_error": ((2, 1, 3), True),
    "blobs_0": ((5, 9, 3), True),
    "blobs_1": ((6, 10, 8), True),
    "blobs_2": ((11, 11, 2), True),
    "blobs_3": ((2, 13, 2), True),
    "blobs_4": ((2, 2, 7), True),
    "blobs_5": ((5, 6, 6), True),
}
LARGE_ROI_REFERENCE = {"odd_cube_fn": ((5, 5, 5), True), "border_fn": ((4, 1, 4), True),
                       "blobs_0": ((10, 10, 10), True), "blobs_3": ((4, 11, 3), True)}


@pytest.mark.parametrize("name", sorted(CLICK_CASES))
def test_click_matches_challenge(name):
    target, prediction = CLICK_CASES[name]
    assert challenge_click(target, prediction) == CLICK_REFERENCE[name]


@pytest.mark.parametrize("name", sorted(LARGE_ROI_REFERENCE))
def test_click_half_resolution_edt_matches_challenge(name, monkeypatch):
    monkeypatch.setattr(segfm3d, "_LARGE_ROI", 1000)
    target, prediction = CLICK_CASES[name]
    assert challenge_click(target, prediction) == LARGE_ROI_REFERENCE[name]


def brute_click_candidates(target, prediction):
    """Independent reference of the rule: scipy's 26-connected labels, the largest component (lowest label on
    ties), distances (voxels) from each of its voxels to the nearest voxel outside it or outside the volume, by
    brute force; the maxima in C order."""
    labels, n = ndimage.label(target != prediction, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    component = labels == int(np.argmax(sizes))
    padded = np.pad(component, 1)
    inside, outside = np.argwhere(padded), np.argwhere(~padded)
    d = np.sqrt(((inside[:, None, :] - outside[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return [tuple(int(c) - 1 for c in p) for p in inside[np.isclose(d, d.max())]]


@pytest.mark.parametrize("seed", range(5))
def test_click_is_the_seeded_choice_among_edt_maxima(seed):
    target, prediction = blobs(100 + seed, (9, 10, 11))
    candidates = brute_click_candidates(target, prediction)
    click, positive = challenge_click(target, prediction)
    assert click == candidates[np.random.RandomState(42).choice(len(candidates))]
    assert positive == bool(target[click]) and target[click] != prediction[click]


def test_no_error_no_click_and_bad_shapes():
    target = cube((5, 5, 5), (1, 1, 1), (3, 3, 3))
    assert challenge_click(target, target.copy()) is None
    with pytest.raises(ValueError, match="one shape"):
        challenge_click(target, target[:4])


G_BOX = np.zeros((10, 120, 260), bool)
for _z in (0, 1, 7):
    G_BOX[_z, 40:50, 120:140] = True
G_BOX[2, 1:60, 100:258] = True  # slices {0, 1, 2, 7}: the middle one is 2, not (0 + 7) // 2
BOX_REFERENCE = {  # shift: mask3D_to_bbox(G_BOX) with randint returning shift (see the docstring)
    0: {"z_min": 0, "z_max": 7, "z_mid": 2, "z_mid_x_min": 100, "z_mid_y_min": 1, "z_mid_x_max": 257,
        "z_mid_y_max": 59},
    2: {"z_min": 0, "z_max": 7, "z_mid": 2, "z_mid_x_min": 98, "z_mid_y_min": 1, "z_mid_x_max": 259,
        "z_mid_y_max": 59},
    5: {"z_min": 0, "z_max": 7, "z_mid": 2, "z_mid_x_min": 95, "z_mid_y_min": 0, "z_mid_x_max": 259,
        "z_mid_y_max": 61},
}


@pytest.mark.parametrize("shift", sorted(BOX_REFERENCE))
def test_box_matches_challenge(shift):
    box = challenge_box(G_BOX, shift)
    assert box == BOX_REFERENCE[shift]
    (z0, z1), (y0, y1), (x0, x1) = box_to_prompt(box)
    assert (z0, z1) == (2, 3) and (y0, y1 - 1, x0, x1 - 1) == (box["z_mid_y_min"], box["z_mid_y_max"],
                                                              box["z_mid_x_min"], box["z_mid_x_max"])


@pytest.mark.parametrize("bad, shift", [(np.zeros((3, 3, 3), bool), 0), (G_BOX, 6), (G_BOX[0], 0)])
def test_box_bad_input(bad, shift):
    with pytest.raises(ValueError):
        challenge_box(bad, shift)


@pytest.mark.parametrize("values", [[0.1, 0.5, 0.6, 0.6, 0.9, 1.0], [0.0] * 6, [0.3, 1.0, 1.0, 1.0, 1.0, 1.0],
                                    [0.9, 0.2, 0.4, 0.1, 0.8, 0.7]])
def test_auc_is_scipy_cumulative_trapezoid_over_the_clicks(values):
    want = cumulative_trapezoid(np.array(values[-5:]), np.arange(5))[-1]  # the challenge's line
    assert challenge_auc(values) == pytest.approx(want, abs=1e-15)
    assert math.isnan(challenge_auc(values[:2], n_clicks=1))


def test_case_metrics_means_gates_and_final():
    dice = np.array([[0.1, 0.3, 0.5, 0.7, 0.8, 0.9],
                     [0.2, 0.0, 0.3, 0.5, 0.6, 0.9]])  # step means: .15 .15 .4 .6 .7 .9
    nsd = np.array([[0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                    [0.3, 0.2, 0.5, 0.6, 0.7, 0.8]])
    m = case_metrics(dice, nsd)
    dsc = [0.15, 0.15, 0.4, 0.6, 0.7, 0.9]
    nsd_gated = [0.0, 0.0, 0.6, 0.7, 0.8, 0.9]  # NSD only where the step's mean DSC > 0.2
    assert [m[f"DSC_{s}"] for s in range(1, 7)] == pytest.approx(dsc)
    assert [m[f"NSD_{s}"] for s in range(1, 7)] == pytest.approx(nsd_gated)
    assert m["DSC_AUC"] == pytest.approx(cumulative_trapezoid(dsc[1:], np.arange(5))[-1])
    assert m["NSD_AUC"] == pytest.approx(cumulative_trapezoid(nsd_gated[1:], np.arange(5))[-1])
    assert (m["DSC_Final"], m["NSD_Final"], m["num_class"]) == (pytest.approx(0.9), pytest.approx(0.9), 2)


GT_MC = np.zeros((10, 14, 16), np.uint8)
GT_MC[1:5, 2:8, 2:9] = 1
GT_MC[6:9, 3:12, 9:15] = 2
GT_MC[2:4, 10:13, 2:5] = 5  # a label value with a gap (3, 4 absent)
SEG_MC = np.zeros_like(GT_MC)
SEG_MC[1:6, 2:7, 3:9] = 1
SEG_MC[6:9, 4:12, 8:14] = 2
SEG_MC[0, 0, 0] = 3  # a predicted class absent from the ground truth: not scored
MULTI_CLASS_REFERENCE = {  # spacing: (compute_multi_class_dsc, compute_multi_class_nsd) of the challenge
    (1.0, 1.0, 1.0): (0.5130102355407572, 0.6666666666666666),
    (3.0, 0.8, 0.8): (0.5130102355407572, 0.6442725512065484),
}


@pytest.mark.parametrize("spacing", sorted(MULTI_CLASS_REFERENCE))
def test_multi_class_metrics_match_challenge(spacing):
    want_dsc, want_nsd = MULTI_CLASS_REFERENCE[spacing]
    assert list(challenge_classes(GT_MC)) == [1, 2, 5]
    assert multi_class_dsc(GT_MC, SEG_MC) == pytest.approx(want_dsc, abs=1e-12)
    assert multi_class_nsd(GT_MC, SEG_MC, spacing) == pytest.approx(want_nsd, abs=1e-12)


def _rows(case, dice, nsd, seconds=0.5):
    """results.csv-like segfm3d rows of one case: dice, nsd (C, S)."""
    return [{"case": case, "object": c, "protocol": "segfm3d", "kind": "bbox_clicks", "step": s,
             "dice": float(dice[c][s]), "nsd": float(nsd[c][s]), "seconds": seconds, "prompt": "point"}
            for c in range(len(dice)) for s in range(len(dice[0]))]


def test_challenge_cases_from_rows():
    from nninteractive_train.evaluation.report import challenge_cases, summarize

    rng = np.random.default_rng(0)
    d1, n1 = rng.uniform(0.1, 1, (2, 6)), rng.uniform(0, 1, (2, 6))
    d2, n2 = rng.uniform(0, 0.3, (3, 6)), rng.uniform(0, 1, (3, 6))
    rows = _rows("a", d1, n1) + _rows("b", d2, n2)
    rows += [dict(r, protocol="per-kind", kind="point") for r in _rows("a", d2, n2)]  # ignored
    cases = challenge_cases(rows)
    assert [c["CaseName"] for c in cases] == ["a", "b"]
    for c, (d, n) in zip(cases, ((d1, n1), (d2, n2))):
        want = case_metrics(d, n)
        for key in ("DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final", "DSC_1", "NSD_6", "num_class"):
            assert c[key] == pytest.approx(want[key])
        assert c["TotalRunningTime"] == pytest.approx(0.5 * d.size)
        assert c["RunningTime_1"] == pytest.approx(0.5 * len(d)) and c["runtime_upperbound"] == 90 * len(d)
    summary = summarize(rows)["segfm3d"]["bbox_clicks"]["challenge"]
    assert summary["cases"] == 2
    assert summary["NSD_AUC"] == pytest.approx((cases[0]["NSD_AUC"] + cases[1]["NSD_AUC"]) / 2)

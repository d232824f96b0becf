"""In-training interactive validation: the in-memory session matches the exported model folder, the network's
mode is restored, and prompts reach the network in the right channels and axes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eval_helpers import CONFIG, DATASET_JSON, PLANS, SPACING, build_network, small_case
from nninteractive_train.evaluation import (
    evaluate_case,
    interactive_validation,
    load_session,
    load_validation_cases,
    session_from_network,
)


class PromptEcho(torch.nn.Module):
    """An 'oracle' network that segments exactly what it is told: foreground where
    prev_seg + positive prompts − negative prompts > 0.5 (input channels: image, prev_seg, bbox±, point±,
    scribble±). With it, Dice > 0 proves that prompts land on the object in the network's input."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the session a device to read

    def forward(self, x):
        fg = x[:, 1] + x[:, 2] + x[:, 4] + x[:, 6] - x[:, 3] - x[:, 5] - x[:, 7]
        return torch.stack([torch.full_like(fg, 0.5), fg], 1) + 0 * self.anchor


@pytest.fixture(scope="module")
def cases():
    out = []
    for seed in (0, 1):
        image, label = small_case(seed)
        out.append((image[None], label, SPACING))
    return out


def test_in_memory_session_matches_exported_model(tiny_model, cases):
    """Same weights, same prompts: the session around the in-memory network gives the exported model's results."""
    net = build_network()
    net.decoder.deep_supervision = False
    net.eval()
    image, label, spacing = cases[0]
    kwargs = dict(protocols=("per-kind",), kinds=("point", "scribble"), steps=1, max_objects=1)
    got = {}
    for name, session in (("memory", session_from_network(net, PLANS, CONFIG, DATASET_JSON, device="cpu")),
                          ("folder", load_session(tiny_model, autozoom=False))):
        rows, failures = evaluate_case(session, image, label, spacing, rng=np.random.default_rng(5), **kwargs)
        assert not failures
        got[name] = [(r["kind"], r["step"], r["prompt"], r["positive"], r["dice"], r["nsd"]) for r in rows]
    assert got["memory"] == got["folder"]


def test_validation_restores_network_mode(cases):
    net = build_network()
    net.train()
    assert net.decoder.deep_supervision
    out = interactive_validation(net, PLANS, CONFIG, DATASET_JSON, cases[:1], rng=np.random.default_rng(0),
                                 kinds=("bbox",), steps=2, max_objects_per_case=1)
    assert net.training and net.decoder.deep_supervision
    assert set(out) >= {"val_dice_1", "val_dice_2", "val_dice_3", "val_objects", "val_failures", "val_seconds"}
    assert out["val_objects"] == 1 and out["val_failures"] == 0
    assert all(0.0 <= out[f"val_dice_{k}"] <= 1.0 for k in (1, 2, 3))

    calls = []
    net.eval()
    interactive_validation(net, PLANS, CONFIG, DATASET_JSON, cases[:1], rng=np.random.default_rng(0),
                           kinds=("point",), steps=0, max_objects_per_case=1,
                           set_deep_supervision=lambda on: (calls.append(on),
                                                            setattr(net.decoder, "deep_supervision", on)))
    assert calls == [False, True] and not net.training


def test_prompts_reach_the_object(cases):
    """With the prompt-echo network every kind's first prompt overlaps the object (coordinates and channels are
    right), and NSD is reported when asked."""
    out = {}
    for kind in ("point", "bbox", "lasso", "scribble"):
        out[kind] = interactive_validation(PromptEcho(), PLANS, CONFIG, DATASET_JSON, cases,
                                           rng=np.random.default_rng(1), kinds=(kind,), steps=2,
                                           max_objects_per_case=2, nsd_tolerance=2.0)
        assert out[kind]["val_objects"] == 4 and out[kind]["val_failures"] == 0
        assert out[kind]["val_dice_1"] > 0.05, (kind, out[kind])
        assert out[kind][f"val_dice_1_{kind}"] == out[kind]["val_dice_1"]  # one kind: its own mean
        assert not math.isnan(out[kind]["val_nsd_3"])
    # a 2D lasso fills a slice of the object; follow-ups add more of it
    assert out["lasso"]["val_dice_3"] > out["lasso"]["val_dice_1"]


def test_cases_without_objects_are_skipped(cases):
    image, label, spacing = cases[0]
    out = interactive_validation(PromptEcho(), PLANS, CONFIG, DATASET_JSON,
                                 [(image, np.zeros_like(label), spacing), cases[1]], rng=np.random.default_rng(0),
                                 kinds=("point",), steps=0, max_objects_per_case=1)
    assert out["val_failures"] == 1 and out["val_objects"] == 1 and out["val_dice_1"] > 0


def test_load_validation_cases_from_a_preprocessed_dataset():
    class FakeDataset:  # nnU-Net's dataset interface: identifiers + load_case -> (data, seg, seg_prev, props)
        identifiers = ["a", "b", "c"]

        def load_case(self, ident):
            data = np.full((2, 4, 5, 6), ord(ident), np.float16)
            seg = np.arange(4 * 5 * 6, dtype=np.int16).reshape(1, 4, 5, 6) % 3
            return data, seg, None, {"spacing": [3.0, 1.0, 0.5]}

    cases = load_validation_cases(FakeDataset(), max_cases=2)
    assert len(cases) == 2
    image, label, spacing = cases[1]
    assert image.shape == (1, 4, 5, 6) and image.dtype == np.float32 and image[0, 0, 0, 0] == ord("b")
    assert label.shape == (4, 5, 6) and label.dtype == np.int32 and spacing == (3.0, 1.0, 0.5)
    assert load_validation_cases(FakeDataset(), ["c"], spacing=(1, 1, 1))[0][2] == (1.0, 1.0, 1.0)


def test_per_kind_dice_averages_to_the_mean(cases):
    out = interactive_validation(PromptEcho(), PLANS, CONFIG, DATASET_JSON, cases[:1], rng=np.random.default_rng(2),
                                 kinds=("point", "lasso"), steps=0, max_objects_per_case=2)
    assert out["val_dice_1"] == pytest.approx((out["val_dice_1_point"] + out["val_dice_1_lasso"]) / 2)


def test_load_raw_validation_cases(tmp_path, monkeypatch):
    from nninteractive_train.data.synthetic import write_dataset
    from nninteractive_train.evaluation import load_raw_validation_cases

    write_dataset(tmp_path, 995, 3, seed=0, name="Held")
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    by_id = load_raw_validation_cases(995, max_cases=2)
    assert len(by_id) == 2 and by_id[0][0].ndim == 4 and by_id[0][1].shape == by_id[0][0].shape[1:]
    named = load_raw_validation_cases(tmp_path / "Dataset995_Held", ["held_0002"])
    assert len(named) == 1 and named[0][1].shape == named[0][0].shape[1:] and len(named[0][2]) == 3


def test_learning_curve_plot(tmp_path):
    from nninteractive_train.evaluation.report import plot_learning_curve

    records = [{"epoch": 0, "train_minutes": 0.5}]
    assert plot_learning_curve(records, tmp_path / "none.png") is None
    records += [{"epoch": e, "train_minutes": e, "val_dice_1": 0.1 * e, "val_dice_1_point": 0.1 * e,
                 "val_dice_1_lasso": 0.15 * e} for e in (1, 2, 3)]
    path = plot_learning_curve(records, tmp_path / "curve.png")
    assert path.is_file() and path.stat().st_size > 1000
    assert not list(tmp_path.glob(".*tmp*"))

"""The weights' moving average (training/ema.py) against a float64 reference loop; card and export wiring."""

import pytest
import torch

from nninteractive_train.export.card import card_markdown, weights_kind
from nninteractive_train.training.checkpoint import model_weights
from nninteractive_train.training.ema import WeightEMA, ema_decay_at, ema_update


@pytest.mark.parametrize("updates, decay, want", [
    (0, 0.99, 0.1), (1, 0.99, 2 / 11), (8, 0.5, 0.5), (10_000, 0.99, 0.99), (90, 0.9, 0.9), (89, 0.95, 90 / 99),
])
def test_decay_is_warmed_up(updates, decay, want):
    assert ema_decay_at(updates, decay) == pytest.approx(want)


def test_update_is_the_formula_and_copies_integer_buffers():
    g = torch.Generator().manual_seed(0)
    avg = {"w": torch.randn(3, 4, generator=g), "n": torch.tensor(2)}
    new = {"w": torch.randn(3, 4, generator=g), "n": torch.tensor(7)}
    want = 0.8 * avg["w"] + 0.2 * new["w"]
    ema_update(avg, new, 0.8)
    assert torch.allclose(avg["w"], want) and int(avg["n"]) == 7


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 3, 3)
        self.norm = torch.nn.BatchNorm3d(3)  # has an integer buffer (num_batches_tracked)


@pytest.mark.parametrize("decay, steps", [(0.9, 1), (0.9, 30), (0.999, 25)])
def test_average_matches_a_reference_loop(decay, steps):
    torch.manual_seed(0)
    net = _Net()
    ema = WeightEMA(net, decay)
    ref = {k: v.double().clone() for k, v in net.state_dict().items() if v.is_floating_point()}
    for n in range(steps):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        ema.update(net)
        d = min(decay, (1 + n) / (10 + n))
        ref = {k: d * v + (1 - d) * net.state_dict()[k].double() for k, v in ref.items()}
    assert ema.updates == steps
    for k, v in ref.items():
        assert torch.allclose(ema.average[k].double(), v, atol=1e-5), k
    assert not torch.equal(ema.average["conv.weight"], net.conv.weight)


def test_state_round_trip_and_averaged_copy():
    torch.manual_seed(1)
    net = _Net()
    ema = WeightEMA(net, 0.95)
    for _ in range(5):
        with torch.no_grad():
            net.conv.weight.mul_(1.1)
        ema.update(net)
    other = WeightEMA(_Net(), 0.95)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 5 and all(torch.equal(other.average[k], ema.average[k]) for k in ema.average)
    before = net.conv.weight.clone()
    copy_ = ema.averaged(net)
    assert torch.equal(copy_.conv.weight, ema.average["conv.weight"]) and torch.equal(net.conv.weight, before)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightEMA(_Net(), decay)


def test_the_card_says_the_weights_are_an_average():
    assert weights_kind({}) is None
    state = {"ema": {"decay": 0.99, "updates": 1000, "weights": {}}}
    assert weights_kind(state) == "moving average of the weights (decay 0.99, 1000 updates)"
    card = {"dataset": {"name": "D", "id": 1, "training_cases": 2}, "pretrained_from": None, "epochs_trained": 1,
            "training_minutes": 1.0, "checkpoint": "final", "run_dir": "r", "trained_with_commit": None,
            "exported_with_commit": None, "license": None, "exported_at": "now", "weights": weights_kind(state),
            "collection": None, "validation": None, "config": {}}
    assert "final of r; moving average of the weights (decay 0.99, 1000 updates) |" in card_markdown(card)


@pytest.mark.parametrize("ck, want", [({"network_weights": "last"}, "last"),
                                      ({"network_weights": "last", "ema": None}, "last"),
                                      ({"network_weights": "last", "ema": {"weights": "average"}}, "average")])
def test_a_model_is_the_average_when_the_run_kept_one(ck, want):
    assert model_weights(ck) == want

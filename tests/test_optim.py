import pytest
import torch

from nninteractive_train.training.optim import make_optimizer


@pytest.mark.parametrize("name, cls, extra", [
    ("sgd", torch.optim.SGD, {"momentum": 0.99, "nesterov": True}),
    ("adamw", torch.optim.AdamW, {"betas": (0.9, 0.999)}),
])
def test_make_optimizer(name, cls, extra):
    net = torch.nn.Linear(3, 2)
    opt = make_optimizer(net.parameters(), name, 2e-3, 1e-4)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (2e-3, 1e-4)
    assert all(group[k] == v for k, v in extra.items())
    assert sum(p.numel() for p in group["params"]) == 8


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="adamw"):
        make_optimizer(torch.nn.Linear(1, 1).parameters(), "adam", 1e-3, 0.0)


@pytest.mark.parametrize("epoch, expected", [(0, 1e-2), (5, 1e-2 * (1 - 5 / 10) ** 0.9), (9, 1e-2 * 0.1 ** 0.9)])
def test_learning_rate_without_warmup_is_nnunets_poly(epoch, expected):
    from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler

    from nninteractive_train.training.optim import learning_rate

    assert learning_rate(epoch, 10, 1e-2) == pytest.approx(expected)
    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), 1e-2)
    sched = PolyLRScheduler(opt, 1e-2, 10)
    sched.step(epoch)
    assert learning_rate(epoch, 10, 1e-2) == pytest.approx(opt.param_groups[0]["lr"])


def test_learning_rate_warmup():
    from nninteractive_train.training.optim import learning_rate

    lrs = [learning_rate(e, 20, 1e-3, warmup_epochs=4) for e in range(20)]
    assert lrs[:5] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3])  # linear up, then poly from the top
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:])) and lrs[-1] > 0


class _Net(torch.nn.Module):
    """Shaped like nnU-Net's networks: the decoder holds a reference to the encoder."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(2, 2)
        self.decoder = torch.nn.Module()
        self.decoder.encoder = self.encoder
        self.decoder.head = torch.nn.Linear(2, 1)

    def forward(self, x):
        return self.decoder.head(self.encoder(x))


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_frozen_encoder_does_not_change(name):
    from nninteractive_train.training.optim import EpochLR, encoder_groups

    torch.manual_seed(0)
    net = _Net()
    groups = encoder_groups(net)
    assert [g["name"] for g in groups] == ["rest", "encoder"]
    assert sum(len(g["params"]) for g in groups) == 4 and len(groups[1]["params"]) == 2
    opt = make_optimizer(groups, name, 1e-1, 1e-2)
    sched = EpochLR(opt, 1e-1, 10, freeze_encoder_epochs=2)
    enc0, head0 = net.encoder.weight.clone(), net.decoder.head.weight.clone()
    for epoch in range(3):
        sched.step(epoch)
        for _ in range(3):
            opt.zero_grad()
            net(torch.randn(4, 2)).pow(2).mean().backward()
            opt.step()
        if epoch == 1:  # frozen so far (no update and no weight decay), while the head trained
            assert torch.equal(net.encoder.weight, enc0) and not torch.equal(net.decoder.head.weight, head0)
    assert not torch.equal(net.encoder.weight, enc0)  # thawed at epoch 2
    assert sched.get_last_lr()[0] == sched.get_last_lr()[1] > 0

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

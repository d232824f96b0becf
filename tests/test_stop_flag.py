"""StopFlag: every rank agrees on a stop at the same iteration, and a signal is never lost, also when its handler
runs while the agreement's all-reduce is in flight (a CI failure: the signalled rank overwrote its flag with the
reduced 0, and the run ended without checkpoint_latest.pth)."""

from __future__ import annotations

import signal

import pytest

from nninteractive_train.training import loop
from nninteractive_train.training.loop import StopFlag


def test_single_process_stops_once_signalled():
    stop = StopFlag()
    assert not stop.agreed(False)
    stop._handle(signal.SIGTERM, None)
    assert stop.agreed(False) and stop.signum == signal.SIGTERM


@pytest.mark.parametrize("others", [0, signal.SIGUSR1])
def test_signal_during_all_reduce_is_kept_for_the_next_agreement(monkeypatch, others):
    """The handler runs inside the all-reduce (the other rank sends ``others``): this call returns what the
    ranks reduced, the same on every rank, and the next one stops."""
    stop = StopFlag()

    def all_reduce(t, op, group=None):  # the reduction over a rank that sent ``others``; then the signal lands
        t.fill_(max(int(t.item()), int(others)))
        stop._handle(signal.SIGTERM, None)

    monkeypatch.setattr(loop.dist, "all_reduce", all_reduce)
    assert stop.agreed(True) == bool(others)
    assert stop.signum == max(signal.SIGTERM, others)
    assert stop.agreed(True)

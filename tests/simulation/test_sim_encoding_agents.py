"""Channel encoding and decay, agents over long sessions, the initial / follow-up steps, determinism."""

import pickle

import numpy as np
import pytest
from scipy import stats
from sim_shapes import CASES, ellipsoid

from nninteractive_train.simulation import (
    BBOX,
    KINDS,
    NUM_INTERACTION_CHANNELS,
    POINT,
    PREV_SEG,
    SCRIBBLE,
    RandomAgent,
    SingleInteractionAgent,
    SunkCostAgent,
    add_prompt,
    channel_mapping,
    draw_agent,
    empty_interactions,
    followup,
    initial,
    set_prev_seg,
    simulate_prompt,
)
from nninteractive_train.simulation.point import point_prompt

CHANNEL = {"point": POINT, "bbox": BBOX, "lasso": BBOX, "scribble": SCRIBBLE}


def test_channel_layout_matches_inference_package():
    assert (PREV_SEG, BBOX, POINT, SCRIBBLE, NUM_INTERACTION_CHANNELS) == (0, (1, 2), (3, 4), (5, 6), 7)
    assert channel_mapping() == {"prev_seg": 0, "bbox2d": [1, 2], "bbox3d": [1, 2], "lasso": [1, 2],
                                 "points": [3, 4], "scribble": [5, 6]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("positive", [True, False])
def test_add_prompt_writes_its_channel(kind, positive):
    target = ellipsoid(shape=(30, 30, 20), radii=(8, 7, 5))
    prediction = ellipsoid(shape=(30, 30, 20), radii=(10, 9, 7)) if not positive else np.zeros_like(target)
    prompt = simulate_prompt(kind, target, prediction, rng=np.random.default_rng(0))
    assert prompt.positive is positive and prompt.kind == kind
    x = empty_interactions(target.shape)
    add_prompt(x, prompt)
    channel = CHANNEL[kind][0 if positive else 1]
    np.testing.assert_array_equal(x[channel], prompt.mask)
    assert not np.delete(x, channel, axis=0).any()


def test_decay_multiplies_old_prompts_by_09():
    shape = (20, 20, 20)
    x = empty_interactions(shape)
    x[PREV_SEG] = 1.0
    add_prompt(x, point_prompt((5, 5, 5), shape))
    add_prompt(x, point_prompt((10, 10, 10), shape, positive=False), decay=0.9)
    assert x[POINT[0]][5, 5, 5] == pytest.approx(0.9) and x[POINT[1]][10, 10, 10] == 1.0
    add_prompt(x, point_prompt((15, 15, 15), shape), decay=0.9)
    assert x[POINT[0]][5, 5, 5] == pytest.approx(0.81) and x[POINT[1]][10, 10, 10] == pytest.approx(0.9)
    assert x[POINT[0]][15, 15, 15] == 1.0
    assert (x[PREV_SEG] == 1.0).all()  # prev_seg is not a prompt: never decayed
    # Merging keeps the maximum, so a new prompt over a decayed one is at full strength.
    add_prompt(x, point_prompt((5, 5, 5), shape), decay=0.9)
    assert x[POINT[0]][5, 5, 5] == 1.0


def test_encoding_errors():
    shape = (8, 8, 8)
    with pytest.raises(TypeError, match="float32"):
        add_prompt(np.zeros((7, *shape)), point_prompt((1, 1, 1), shape))
    with pytest.raises(ValueError, match=r"\(7, X, Y, Z\)"):
        add_prompt(np.zeros((6, *shape), np.float32), point_prompt((1, 1, 1), shape))
    with pytest.raises(ValueError, match="does not match"):
        add_prompt(empty_interactions((8, 8, 9)), point_prompt((1, 1, 1), shape))
    with pytest.raises(ValueError, match="decay"):
        add_prompt(empty_interactions(shape), point_prompt((1, 1, 1), shape), decay=1.5)
    with pytest.raises(ValueError, match="prediction shape"):
        set_prev_seg(empty_interactions(shape), np.zeros((8, 8, 7), bool))


def _session(agent, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [agent.next_kind(rng=rng) for _ in range(steps)]


def test_random_agent_switches_every_step():
    kinds = _session(RandomAgent(), 400)
    assert all(a != b for a, b in zip(kinds, kinds[1:]))
    counts = np.array([kinds.count(k) for k in KINDS])
    assert stats.chisquare(counts).pvalue > 1e-3  # every kind, about equally often


def test_sunk_cost_agent_keeps_with_keep_p():
    for keep_p in (0.9, 0.6):
        kinds = _session(SunkCostAgent(keep_p=keep_p), 1000, seed=1)
        keeps = sum(a == b for a, b in zip(kinds, kinds[1:]))
        assert stats.binomtest(keeps, len(kinds) - 1, keep_p).pvalue > 1e-3
        assert len(set(kinds)) == len(KINDS)  # it does switch, to every kind eventually


def test_single_interaction_agent_never_switches():
    for seed in range(5):
        kinds = _session(SingleInteractionAgent(), 50, seed=seed)
        assert len(set(kinds)) == 1
    first = [_session(SingleInteractionAgent(), 1, seed=s)[0] for s in range(400)]
    assert stats.chisquare([first.count(k) for k in KINDS]).pvalue > 1e-3


def test_agents_respect_kinds_and_weights():
    kinds = _session(SunkCostAgent(kinds=("point", "scribble"), keep_p=0.0), 100)
    assert set(kinds) == {"point", "scribble"}
    firsts = [_session(SingleInteractionAgent(weights=(3, 1, 0, 0)), 1, seed=s)[0] for s in range(800)]
    assert firsts.count("lasso") == firsts.count("scribble") == 0
    assert stats.binomtest(firsts.count("point"), 800, 0.75).pvalue > 1e-3
    assert _session(RandomAgent(kinds=("bbox",)), 5) == ["bbox"] * 5
    with pytest.raises(ValueError, match="kinds"):
        RandomAgent(kinds=("click",))


def test_draw_agent_frequencies_and_pickling():
    rng = np.random.default_rng(0)
    names = {RandomAgent: 0, SunkCostAgent: 1, SingleInteractionAgent: 2}
    counts = np.zeros(3)
    for _ in range(900):
        counts[names[type(draw_agent(rng=rng, agent_weights={"random": 1, "sunk_cost": 2, "single": 3}))]] += 1
    assert stats.chisquare(counts, 900 * np.array([1, 2, 3]) / 6).pvalue > 1e-3
    agent = draw_agent(rng=rng, kinds=("point", "lasso"), weights=(1, 1), agent_weights=(0, 1, 0), keep_p=0.7)
    assert isinstance(agent, SunkCostAgent) and agent.keep_p == 0.7
    agent.next_kind(rng=rng)
    clone = pickle.loads(pickle.dumps(agent))
    assert clone == agent
    assert _session(clone, 20, seed=9) == _session(agent, 20, seed=9)
    with pytest.raises(ValueError, match="unknown agent"):
        draw_agent(rng=rng, agent_weights={"lazy": 1})


def test_initial_and_followup_steps():
    target = ellipsoid(shape=(30, 30, 20), radii=(8, 7, 5))
    prediction = ellipsoid(shape=(30, 30, 20), radii=(10, 9, 7))
    rng = np.random.default_rng(0)
    x = empty_interactions(target.shape)
    agent = SingleInteractionAgent(kinds=("point",))
    first = initial(x, target, agent, rng=rng)
    assert first.positive and x[POINT[0]].max() == 1 and not x[PREV_SEG].any()
    before = x[POINT[0]].copy()
    second = followup(x, target, prediction, agent, rng=rng)
    assert not second.positive and agent.steps == 2
    np.testing.assert_array_equal(x[PREV_SEG], prediction.astype(np.float32))
    np.testing.assert_allclose(x[POINT[0]], before * np.float32(0.9))
    assert x[POINT[1]].max() == 1
    # No error left: no prompt and no decay, but prev_seg holds the new prediction.
    kept = x[1:].copy()
    assert followup(x, target, target, agent, rng=rng) is None
    np.testing.assert_array_equal(x[1:], kept)
    np.testing.assert_array_equal(x[PREV_SEG], target.astype(np.float32))
    assert initial(empty_interactions(target.shape), np.zeros_like(target), agent, rng=rng) is None


@pytest.mark.parametrize("kind", KINDS)
def test_same_rng_same_prompt(kind):
    target = ellipsoid(shape=(30, 30, 20), radii=(8, 7, 5))
    prediction = ellipsoid(shape=(30, 30, 20), radii=(9, 6, 6), centre=(16, 14, 10))
    for pred in (None, prediction):
        a = simulate_prompt(kind, target, pred, rng=np.random.default_rng(7), spacing=(1, 1, 2))
        b = simulate_prompt(kind, target, pred, rng=np.random.default_rng(7), spacing=(1, 1, 2))
        assert (a.kind, a.positive, a.axis, a.index, a.coords, a.bbox, a.offset) == \
               (b.kind, b.positive, b.axis, b.index, b.coords, b.bbox, b.offset)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)).mask, a.mask)  # travels to pool workers
    draws = [simulate_prompt(kind, target, rng=np.random.default_rng(s)) for s in range(5)]
    assert len({(d.axis, d.index, d.coords, d.offset, d.patch.tobytes()) for d in draws}) > 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_kind_on_edge_cases(kind, case):
    target, spacing = CASES[case]()
    rng = np.random.default_rng(0)
    for pred in (None, np.zeros_like(target)):
        p = simulate_prompt(kind, target, pred, rng=rng, spacing=spacing)
        mask = p.mask
        assert mask.shape == target.shape and mask.dtype == np.float32
        assert 0 <= mask.min() and mask.max() == 1 and p.positive
        assert (mask[target] > 0).any()  # the prompt touches the object it is about
        x = empty_interactions(target.shape)
        add_prompt(x, p)
        assert x.max() == 1


def test_input_validation():
    target = ellipsoid()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="kind"):
        simulate_prompt("click", target, rng=rng)
    with pytest.raises(ValueError, match="3D"):
        simulate_prompt("point", target[0], rng=rng)
    with pytest.raises(ValueError, match="prediction shape"):
        simulate_prompt("point", target, target[:-1], rng=rng)
    with pytest.raises(ValueError, match="only 0 and 1"):
        simulate_prompt("point", target.astype(np.uint8) * 2, rng=rng)
    with pytest.raises(ValueError, match="spacing"):
        simulate_prompt("point", target, rng=rng, spacing=(1, 0, 1))
    with pytest.raises(TypeError, match="unknown prompt simulation parameter"):
        simulate_prompt("point", target, rng=rng, alpah=(1.0,))
    # {0, 1} integer masks are accepted.
    assert simulate_prompt("point", target.astype(np.uint8), rng=rng).positive

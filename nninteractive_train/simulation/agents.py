"""Simulated users: which prompt kind they give next. Plain picklable objects that travel with their sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nninteractive_train.simulation.prompt import KINDS

__all__ = ["Agent", "RandomAgent", "SunkCostAgent", "SingleInteractionAgent", "AGENTS", "draw_agent"]

DEFAULT_KINDS = ("point", "bbox", "lasso", "scribble")


def _check_kinds(kinds: Sequence[str], weights: Sequence[float] | None) -> None:
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {tuple(kinds)}")
    if weights is not None and (len(weights) != len(kinds) or min(weights) < 0 or sum(weights) <= 0):
        raise ValueError(f"weights {weights} must be non-negative weights, one per kind {tuple(kinds)}")


def _choose(kinds: Sequence[str], probs: Sequence[float] | None, rng: np.random.Generator,
            exclude: str | None = None) -> str:
    weights = np.ones(len(kinds)) if probs is None else np.asarray(probs, np.float64)
    if exclude is not None and len(kinds) > 1:
        weights = np.where(np.asarray(kinds) == exclude, 0.0, weights)
        if weights.sum() == 0:  # every other kind has zero weight: switch uniformly among the others
            weights = (np.asarray(kinds) != exclude).astype(np.float64)
    return kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]


@dataclass
class Agent:
    """Base: `next_kind(rng=...)` returns the kind of the next prompt; the first call gives the initial kind.

    Attributes:
        kinds: prompt kinds this user gives.
        weights: weights of `kinds` for the initial kind and for switches (None: equal).
        last: kind of the latest prompt (None before the first).
        steps: prompts given so far.
    """

    kinds: tuple[str, ...] = DEFAULT_KINDS
    weights: tuple[float, ...] | None = None
    last: str | None = None
    steps: int = 0

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        if self.weights is not None:
            self.weights = tuple(float(p) for p in self.weights)
        _check_kinds(self.kinds, self.weights)

    def next_kind(self, *, rng: np.random.Generator) -> str:
        kind = _choose(self.kinds, self.weights, rng) if self.last is None else self._follow(rng)
        self.last = kind
        self.steps += 1
        return kind

    def _follow(self, rng: np.random.Generator) -> str:
        raise NotImplementedError


@dataclass
class RandomAgent(Agent):
    """Gives a different kind at every step (when it has more than one kind)."""

    def _follow(self, rng: np.random.Generator) -> str:
        return _choose(self.kinds, self.weights, rng, exclude=self.last)


@dataclass
class SunkCostAgent(Agent):
    """Keeps its kind with probability `keep_p`, else switches to another kind."""

    keep_p: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.keep_p <= 1:
            raise ValueError(f"keep_p must be in [0, 1], got {self.keep_p}")

    def _follow(self, rng: np.random.Generator) -> str:
        if rng.random() < self.keep_p:
            return self.last
        return _choose(self.kinds, self.weights, rng, exclude=self.last)


@dataclass
class SingleInteractionAgent(Agent):
    """Uses one kind for the whole session (drawn at the first step)."""

    def _follow(self, rng: np.random.Generator) -> str:
        return self.last


AGENTS = {"random": RandomAgent, "sunk_cost": SunkCostAgent, "single": SingleInteractionAgent}


def draw_agent(
    *,
    rng: np.random.Generator,
    kinds: Sequence[str] = DEFAULT_KINDS,
    weights: Sequence[float] | None = None,
    agent_weights: Sequence[float] | dict[str, float] | None = None,
    keep_p: float = 0.9,
) -> Agent:
    """A fresh user agent, drawn among random / sunk-cost / single-interaction.

    Args:
        rng: random source.
        kinds: prompt kinds the agent may give.
        weights: weights of `kinds` for the first prompt and for switches (None: equal).
        agent_weights: relative frequencies of the agents "random", "sunk_cost", "single", as a dict by name
            (missing names get 0) or a sequence in that order (None: equal).
        keep_p: the sunk-cost agent's probability of keeping its kind.
    """
    names = tuple(AGENTS)
    if agent_weights is None:
        w = np.ones(len(names))
    elif isinstance(agent_weights, dict):
        unknown = sorted(set(agent_weights) - set(names))
        if unknown:
            raise ValueError(f"unknown agent name(s) {unknown}; known: {names}")
        w = np.array([float(agent_weights.get(n, 0.0)) for n in names])
    else:
        w = np.asarray(agent_weights, np.float64)
        if w.shape != (len(names),):
            raise ValueError(f"agent_weights needs {len(names)} entries for {names}, got {tuple(agent_weights)}")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"agent weights must be non-negative with a positive sum, got {w.tolist()}")
    name = names[int(rng.choice(len(names), p=w / w.sum()))]
    weights = None if weights is None else tuple(weights)
    if name == "sunk_cost":
        return SunkCostAgent(kinds=tuple(kinds), weights=weights, keep_p=keep_p)
    return AGENTS[name](kinds=tuple(kinds), weights=weights)

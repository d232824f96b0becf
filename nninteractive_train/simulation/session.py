"""One interaction step of a training sample: the agent's next prompt, written into the interaction channels."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nninteractive_train.simulation.agents import Agent
from nninteractive_train.simulation.encoding import add_prompt, set_prev_seg
from nninteractive_train.simulation.prompt import Prompt
from nninteractive_train.simulation.simulate import simulate_prompt

__all__ = ["initial", "followup"]


def initial(
    interactions: np.ndarray,
    target: np.ndarray,
    agent: Agent,
    *,
    rng: np.random.Generator,
    spacing: Sequence[float] | None = None,
    **params,
) -> Prompt | None:
    """The first prompt of a session: the agent's initial kind, drawn on the target, added to `interactions`.

    Args:
        interactions: float32 (7, X, Y, Z), normally zeros; modified in place.
        target: bool (X, Y, Z).
        agent: the sample's user agent (its state advances).
        rng, spacing, params: as for `simulate_prompt`.

    Returns:
        The prompt, or None for an empty target (interactions untouched).
    """
    kind = agent.next_kind(rng=rng)
    prompt = simulate_prompt(kind, target, None, rng=rng, spacing=spacing, **params)
    if prompt is not None:
        add_prompt(interactions, prompt)
    return prompt


def followup(
    interactions: np.ndarray,
    target: np.ndarray,
    prediction: np.ndarray,
    agent: Agent,
    *,
    rng: np.random.Generator,
    spacing: Sequence[float] | None = None,
    decay: float = 0.9,
    **params,
) -> Prompt | None:
    """A follow-up step: prompt on the prediction's error, decay older prompts, store the prediction.

    The agent picks the kind; a component chosen ∝ size among the FN / FP components gives a positive /
    negative prompt (a point if the kind cannot be drawn there). All prompt channels are multiplied by `decay`
    before it is added, and prev_seg receives `prediction` whether or not an error is left.

    Args:
        interactions: float32 (7, X, Y, Z); modified in place.
        target, prediction: bool (X, Y, Z).
        agent: the sample's user agent (its state advances).
        decay: factor applied to channels 1..6 before the new prompt is written.
        rng, spacing, params: as for `simulate_prompt`.

    Returns:
        The prompt, or None when the prediction equals the target.
    """
    kind = agent.next_kind(rng=rng)
    prompt = simulate_prompt(kind, target, prediction, rng=rng, spacing=spacing, **params)
    set_prev_seg(interactions, prediction)
    if prompt is not None:
        add_prompt(interactions, prompt, decay=decay)
    return prompt

"""Prompt simulation for nnInteractive-style training: points, 2D boxes, lassos, scribbles, user agents.

>>> prompt = simulate_prompt("lasso", target, prediction, rng=np.random.default_rng(0), spacing=(1, 1, 2))

See docs/method.md for the method's parameters and §3 for the channel layout the prompts are written into.
"""

from nninteractive_train.simulation.agents import (
    Agent,
    RandomAgent,
    SingleInteractionAgent,
    SunkCostAgent,
    draw_agent,
)
from nninteractive_train.simulation.encoding import (
    BBOX,
    NUM_INTERACTION_CHANNELS,
    POINT,
    POINT_RADIUS,
    PREV_SEG,
    SCRIBBLE,
    SCRIBBLE_THICKNESS,
    add_prompt,
    channel_mapping,
    empty_interactions,
    set_prev_seg,
)
from nninteractive_train.simulation.params import SimulationParams
from nninteractive_train.simulation.prompt import KINDS, Prompt
from nninteractive_train.simulation.simulate import simulate_prompt
from nninteractive_train.simulation.session import followup, initial

__all__ = [
    "Agent",
    "BBOX",
    "KINDS",
    "NUM_INTERACTION_CHANNELS",
    "POINT",
    "POINT_RADIUS",
    "PREV_SEG",
    "Prompt",
    "RandomAgent",
    "SCRIBBLE",
    "SCRIBBLE_THICKNESS",
    "SimulationParams",
    "SingleInteractionAgent",
    "SunkCostAgent",
    "add_prompt",
    "channel_mapping",
    "draw_agent",
    "empty_interactions",
    "followup",
    "initial",
    "set_prev_seg",
    "simulate_prompt",
]

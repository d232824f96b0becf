"""The tunable parameters of the prompt simulation, with the nnInteractive paper's values as defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from nninteractive_train.simulation.encoding import POINT_RADIUS, SCRIBBLE_THICKNESS

__all__ = ["SimulationParams", "make_params", "SCRIBBLE_STYLES"]

SCRIBBLE_STYLES = ("line", "centre", "contour")


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of `simulate_prompt`; every field can be passed to it as a keyword.

    "d" below is the extent of the component's 2D slice along an axis (voxels); "s" is its directional EDT
    (the mean over the slice's mask of the 1D distance to background along an axis, voxels): the object's
    typical half-thickness in that direction.
    """

    alphas: tuple[float, ...] = (1.0, 8.0)
    """Point: exponents α of p(x) ∝ D(x)^α (D = component EDT normalised to [0, 1]); one is drawn per point."""
    alpha_probs: tuple[float, ...] = (0.5, 0.5)
    """Point: probabilities of the entries of `alphas`."""
    point_radius: int = POINT_RADIUS
    """Point: ball radius (voxels); must match the exported `point_radius`."""
    bbox_jitter: float = 0.05
    """BBox: each edge moves by U(-j, j)·d."""
    bbox_shift: float = 0.05
    """BBox: the whole box moves by U(-s, s)·d per axis."""
    bbox_scale: tuple[float, float] = (0.8, 1.2)
    """BBox: per-axis scale factor range about the box centre."""
    bbox_same_scale_p: float = 0.3
    """BBox: probability that both in-plane axes use the same scale factor."""
    lasso_closing: tuple[float, float] = (0.75, 2.5)
    """Lasso: closing radius per axis, × s (closes concavities the way a hand-drawn outline skips them)."""
    lasso_dilation: tuple[float, float] = (0.25, 0.75)
    """Lasso: dilation radius per axis, × s (at least one voxel): the margin a user leaves."""
    lasso_displacement: tuple[float, float] = (0.12, 0.6)
    """Lasso: amplitude of the smooth random contour displacement per axis, × s."""
    scribble_styles: tuple[str, ...] = SCRIBBLE_STYLES
    """Scribble: styles to draw from ("line", "centre", "contour")."""
    scribble_style_probs: tuple[float, ...] | None = None
    """Scribble: probabilities of `scribble_styles` (None: equal)."""
    scribble_truncation: float = 0.25
    """Scribble: a lower/upper bound per in-plane axis cuts U(0, t) of the stroke's extent ..."""
    scribble_truncation_p: float = 0.5
    """... with this probability per bound (each of the 4 independently)."""
    scribble_erosion: tuple[float, float] = (0.25, 0.75)
    """Scribble (contour): erosion radius before taking the contour, × s."""
    scribble_displacement: tuple[float, float] = (0.0, 0.25)
    """Scribble: amplitude of the smooth random displacement per axis, × s."""
    scribble_width: int = SCRIBBLE_THICKNESS[0]
    """Scribble: final stroke width (voxels); must match the exported `preferred_scribble_thickness`."""
    scribble_min_voxels: int = 4
    """Scribble: slices with fewer component voxels fall back to a point (a user would click)."""
    slice_power: float = 1.0
    """BBox, lasso, scribble: the slice is drawn ∝ (component voxels on it)^slice_power over the three axes; 1
    favours the central cross-sections a user picks, 0 draws every slice through the component alike."""
    fragment: bool = True
    """Follow-up bbox / lasso: break the error component with thresholded Perlin noise first."""
    noise_period: float = 24.0
    """Fragmentation: Perlin lattice period, in voxels of the finest axis (physical units otherwise)."""
    noise_threshold: float = 0.0
    """Fragmentation: keep error voxels where the noise exceeds this (0 keeps about half)."""
    fallback: bool = True
    """When the kind cannot be drawn for the chosen component (e.g. too small for a scribble), return a point."""


_FIELDS = {f.name for f in dataclasses.fields(SimulationParams)}


def make_params(params: SimulationParams | None = None, **overrides) -> SimulationParams:
    """A `SimulationParams` from an optional base and keyword overrides; unknown names raise `TypeError`."""
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise TypeError(f"unknown prompt simulation parameter(s) {unknown}; known: {sorted(_FIELDS)}")
    base = params if params is not None else SimulationParams()
    out = dataclasses.replace(base, **overrides) if overrides else base
    _check(out)
    return out


def _check(p: SimulationParams) -> None:
    if len(p.alphas) != len(p.alpha_probs) or not p.alphas:
        raise ValueError(f"alphas {p.alphas} and alpha_probs {p.alpha_probs} must be non-empty, same length")
    for name in ("bbox_scale", "lasso_closing", "lasso_dilation", "lasso_displacement", "scribble_erosion",
                 "scribble_displacement"):
        lo, hi = getattr(p, name)
        if not 0 <= lo <= hi:
            raise ValueError(f"{name} must be a range 0 <= lo <= hi, got {(lo, hi)}")
    bad = [s for s in p.scribble_styles if s not in SCRIBBLE_STYLES]
    if bad or not p.scribble_styles:
        raise ValueError(f"scribble_styles must be a non-empty subset of {SCRIBBLE_STYLES}, got {p.scribble_styles}")
    if p.scribble_width < 1 or p.point_radius < 1:
        raise ValueError("scribble_width and point_radius must be >= 1")
    if not p.slice_power >= 0:
        raise ValueError(f"slice_power must be >= 0, got {p.slice_power}")
    if p.noise_period <= 0:
        raise ValueError(f"noise_period must be > 0, got {p.noise_period}")

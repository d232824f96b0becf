"""Interactive evaluation protocols, run through the public inference session with simulated users.

per-kind (the paper's Fig. 8): for each prompt kind (point, bbox, lasso, scribble) and a random mix (a user who
switches kind at every step), one initial prompt on the object, then ``steps`` follow-ups drawn by
``nninteractive_train.simulation`` from the current error (a component chosen ∝ size; FN → positive, FP →
negative).

segfm3d (CVPR 2025 "Foundation Models for Interactive 3D Biomedical Image Segmentation"): a 2D box on the
object's largest slice along array axis 0, then up to ``steps`` clicks, each at the EDT maximum of the largest
error component (`segfm3d_click`).

Step 0 is the initial prompt, so a run has ``steps + 1`` rows; the prediction after a step is the session's
target buffer. When no error is left the user stops: the remaining rows repeat the metrics with prompt "none".
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import cc3d
import edt
import numpy as np

from nninteractive_train.evaluation.metrics import dice, nsd
from nninteractive_train.evaluation.objects import find_objects
from nninteractive_train.evaluation.session import apply_prompt, quiet

__all__ = ["PER_KIND", "SEGFM3D_KIND", "PROTOCOLS", "largest_slice_box", "segfm3d_click", "run_object",
           "evaluate_case"]

PER_KIND = ("point", "bbox", "lasso", "scribble", "random")
SEGFM3D_KIND = "bbox_clicks"
PROTOCOLS = {"per-kind": PER_KIND, "segfm3d": (SEGFM3D_KIND,)}
_RUNS = PER_KIND + (SEGFM3D_KIND,)  # fixed order: each (object, run) gets its own seed, whatever is selected


def largest_slice_box(target: np.ndarray) -> list[list[int]]:
    """The segfm3d initial prompt: the 2D bounding box of `target` on its slice along array axis 0 with the
    most voxels (the first such slice on ties), as [[z, z + 1], [lo, hi), [lo, hi)]."""
    counts = np.count_nonzero(target, axis=(1, 2))
    if not counts.any():
        raise ValueError("target is empty: no box to draw")
    z = int(np.argmax(counts))
    ys = np.flatnonzero(target[z].any(axis=1))
    xs = np.flatnonzero(target[z].any(axis=0))
    return [[z, z + 1], [int(ys[0]), int(ys[-1]) + 1], [int(xs[0]), int(xs[-1]) + 1]]


def segfm3d_click(
    target: np.ndarray, prediction: np.ndarray, spacing: Sequence[float] | None = None
) -> tuple[tuple[int, int, int], bool] | None:
    """The segfm3d refinement click: the EDT maximum of the largest error component.

    As in the challenge's evaluation script (CVPR25_iter_eval.py): the error is ``target != prediction`` (FN and
    FP together), split into 26-connected components; in the largest one (the lowest label on ties) the click
    goes to the voxel farthest from the component's boundary, the volume border counting as boundary. The click
    is positive when it lands on the target (an FN voxel), negative otherwise (FP). Differences: the EDT here
    uses `spacing` (the challenge's is isotropic in voxels; pass None for that), and ties of the maximum go to
    the first voxel in C order instead of a seeded random choice.

    Args:
        target, prediction: bool (X, Y, Z).
        spacing: voxel size in mm per axis (None: isotropic).

    Returns:
        ((x, y, z), positive), or None when the prediction equals the target.
    """
    target = np.asarray(target, bool)
    prediction = np.asarray(prediction, bool)
    if target.shape != prediction.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}")
    error = target != prediction
    if not error.any():
        return None
    labels = cc3d.connected_components(error, connectivity=26)
    stats = cc3d.statistics(labels)
    sizes = np.asarray(stats["voxel_counts"]).copy()
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    box = stats["bounding_boxes"][largest]
    component = np.ascontiguousarray(labels[box] == largest)
    # black_border: outside the crop is either outside the component or outside the volume, both boundary.
    dist = edt.edtsq(component, anisotropy=(1.0, 1.0, 1.0) if spacing is None else tuple(map(float, spacing)),
                     black_border=True, parallel=1)
    local = np.unravel_index(int(np.argmax(dist)), dist.shape)
    click = tuple(int(b.start) + int(i) for b, i in zip(box, local))
    return click, bool(target[click])


def _run_steps(session, target: np.ndarray, buffer: np.ndarray, run: str, *, steps: int,
               rng: np.random.Generator, spacing, tolerance: float | None) -> list[dict]:
    """One run on one object: reset the session, give the prompts, measure after each."""
    from nninteractive_train.simulation import RandomAgent, SingleInteractionAgent, simulate_prompt
    from nninteractive_train.simulation.prompt import KINDS

    session.reset_interactions()  # also zeroes the target buffer
    if run == "random":
        agent = RandomAgent(kinds=KINDS)
    elif run != SEGFM3D_KIND:
        agent = SingleInteractionAgent(kinds=(run,))
    prediction = None  # None until the first call: the initial prompt is drawn on the target alone
    d, s = 0.0, (0.0 if tolerance is not None else float("nan"))
    rows = []
    for step in range(steps + 1):
        if run == SEGFM3D_KIND:
            if step == 0:
                prompt = ("bbox", True, {"bbox": largest_slice_box(target)})
            else:
                click = segfm3d_click(target, prediction, spacing)
                prompt = None if click is None else ("point", click[1], {"coords": click[0]})
        else:
            p = simulate_prompt(agent.next_kind(rng=rng), target, prediction, rng=rng, spacing=spacing)
            prompt = None if p is None else (p.kind, p.positive, {"coords": p.coords, "bbox": p.bbox,
                                                                  "patch": p.patch, "offset": p.offset})
        row = {"step": step, "prompts": step + 1, "prompt": "none", "positive": "", "seconds": 0.0}
        if prompt is not None:
            kind, positive, where = prompt
            t0 = time.perf_counter()
            apply_prompt(session, kind, positive, **where)
            row.update(prompt=kind, positive=bool(positive), seconds=time.perf_counter() - t0)
            prediction = buffer.astype(bool)
            d = dice(prediction, target)
            s = nsd(prediction, target, spacing, tolerance) if tolerance is not None else float("nan")
        row.update(dice=d, nsd=s)
        rows.append(row)
    return rows


def run_object(session, target: np.ndarray, buffer: np.ndarray, run: str, *, steps: int,
               rng: np.random.Generator, spacing: Sequence[float] | None = None,
               tolerance: float | None = 2.0) -> list[dict]:
    """Run one simulated user on one object through a session whose image and target buffer are set.

    Args:
        session: an ``nnInteractiveInferenceSession`` after ``set_image`` and ``set_target_buffer(buffer)``.
        target: bool (X, Y, Z), the object.
        buffer: the session's target buffer (uint8 (X, Y, Z)); it holds the prediction after each call.
        run: a per-kind kind ("point", "bbox", "lasso", "scribble", "random") or ``SEGFM3D_KIND``.
        steps: follow-ups after the initial prompt.
        rng: random source of the simulated prompts (segfm3d uses none).
        spacing: voxel size in mm per axis, for the simulators, the segfm3d EDT and NSD.
        tolerance: NSD tolerance in mm; None skips NSD (reported as NaN).

    Returns:
        ``steps + 1`` rows: step, prompts (= step + 1), prompt (the kind actually given, e.g. a point when a
        scribble could not be drawn, or "none"), positive, dice, nsd, seconds (the session call).
    """
    if run not in _RUNS:
        raise ValueError(f"unknown run {run!r}; expected one of {_RUNS}")
    return _run_steps(session, np.asarray(target, bool), buffer, run, steps=steps, rng=rng, spacing=spacing,
                      tolerance=tolerance)


def _check_case(image: np.ndarray, label: np.ndarray) -> None:
    if image.ndim != 4:
        raise ValueError(f"image must be 4D (C, X, Y, Z), got shape {image.shape}")
    if label.ndim != 3:
        raise ValueError(f"label must be 3D (X, Y, Z), got shape {label.shape}")
    if image.shape[1:] != label.shape:
        raise ValueError(f"image shape {image.shape[1:]} differs from label shape {label.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or infinite values")
    if not np.any(image[0]):
        raise ValueError("image is entirely zero (the session cannot normalise it)")


def evaluate_case(
    session,
    image: np.ndarray,
    label: np.ndarray,
    spacing: Sequence[float],
    *,
    rng: np.random.Generator,
    protocols: Sequence[str] = ("per-kind", "segfm3d"),
    kinds: Sequence[str] = PER_KIND,
    steps: int = 5,
    tolerance: float | None = 2.0,
    min_object_size: int = 10,
    max_objects: int | None = None,
    object_order: str = "largest",
    case: str = "",
    on_run: Callable[[list[dict]], None] | None = None,
    verbose: bool = False,
) -> tuple[list[dict], list[dict]]:
    """Evaluate every target object of one case with the selected protocols.

    Args:
        session: a loaded ``nnInteractiveInferenceSession`` (its image is replaced).
        image: float (C, X, Y, Z), C = the model's image channels.
        label: int (X, Y, Z); the objects are the 26-connected components of each value > 0 (`find_objects`).
        spacing: voxel size in mm per array axis.
        rng: random source: object subsetting, then one seed per (object, run).
        protocols: subset of ``PROTOCOLS``; kinds: the per-kind runs to do (subset of ``PER_KIND``).
        steps: follow-ups after the initial prompt.
        tolerance: NSD tolerance in mm (None: no NSD).
        min_object_size, max_objects, object_order: see `find_objects`.
        case: name written into the rows.
        on_run: called with the rows of each finished run (progress reporting).
        verbose: let the session print.

    Returns:
        rows (one per object, protocol, kind and step) and failures (runs the session raised on, with the error;
        their rows are left out).

    Raises:
        ValueError: the case itself is unusable (shape mismatch, no object, non-finite image, ...).
    """
    image = np.asarray(image)
    label = np.asarray(label)
    _check_case(image, label)
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; expected some of {list(PROTOCOLS)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    objects = find_objects(label, min_size=min_object_size, max_objects=max_objects, order=object_order, rng=rng)
    if not objects:
        raise ValueError(f"label has no foreground object of >= {min_object_size} voxels (empty label)")
    seeds = rng.integers(0, 2**63 - 1, size=(len(objects), len(_RUNS)))
    runs = [(p, k) for p in protocols for k in PROTOCOLS[p] if p != "per-kind" or k in kinds]
    buffer = np.zeros(label.shape, np.uint8)
    rows, failures = [], []
    with quiet(not verbose):
        session.set_image(image.astype(np.float32, copy=False))
        session.set_target_buffer(buffer)
        for i, obj in enumerate(objects):
            target = obj.mask()
            for protocol, kind in runs:
                run_rng = np.random.default_rng(int(seeds[i, _RUNS.index(kind)]))
                head = {"case": case, "object": obj.index, "label": obj.label, "voxels": obj.voxels,
                        "protocol": protocol, "kind": kind}
                try:
                    got = run_object(session, target, buffer, kind, steps=steps, rng=run_rng, spacing=spacing,
                                     tolerance=tolerance)
                except Exception as e:  # one failing run must not lose the case's other results
                    failures.append({**head, "error": f"{type(e).__name__}: {e}"})
                    continue
                got = [{**head, **r} for r in got]
                rows.extend(got)
                if on_run is not None:
                    on_run(got)
    return rows, failures

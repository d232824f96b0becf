"""Interactive evaluation protocols, run through the public inference session with simulated users.

per-kind (the paper's Fig. 8): for each prompt kind (point, bbox, lasso, scribble) and a random mix (a user who
switches kind at every step), one initial prompt on the object, then ``steps`` follow-ups drawn by
``nninteractive_train.simulation`` from the current error (a component chosen ∝ size; FN → positive, FP →
negative).

segfm3d (CVPR 2025 "Foundation Models for Interactive 3D Biomedical Image Segmentation"), with the challenge's
own rules (`segfm3d`): its targets are the classes (label values), not components; the challenge's box (a 2D box
on the class's middle slice along array axis 0, randomly widened), then ``steps`` clicks at the EDT maximum of
the largest error component; Dice and NSD by surface elements (`surface_distance`) per class and step. The
challenge's per-case metrics (class means, NSD gate, AUC over the clicks) are computed from these rows
(`report.challenge_cases`).

Step 0 is the initial prompt, so a run has ``steps + 1`` rows; the prediction after a step is the session's
target buffer. When no error is left no prompt is given: the remaining rows repeat the metrics with prompt "none".
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from nninteractive_train.evaluation.metrics import dice, nsd
from nninteractive_train.evaluation.objects import TargetObject, find_objects
from nninteractive_train.evaluation.segfm3d import box_to_prompt, challenge_box, challenge_click
from nninteractive_train.evaluation.session import apply_prompt, quiet
from nninteractive_train.evaluation.surface_distance import surface_dice

__all__ = ["PER_KIND", "SEGFM3D_KIND", "PROTOCOLS", "class_targets", "run_object", "evaluate_case"]

PER_KIND = ("point", "bbox", "lasso", "scribble", "random")
SEGFM3D_KIND = "bbox_clicks"
PROTOCOLS = {"per-kind": PER_KIND, "segfm3d": (SEGFM3D_KIND,)}
_RUNS = PER_KIND + (SEGFM3D_KIND,)  # fixed order: each (object, run) gets its own seed, whatever is selected


def _segfm3d_prompt(step: int, target: np.ndarray, prediction, rng: np.random.Generator):
    """The challenge's prompt at `step`: its box (step 0, widened by a shift drawn from `rng` as the challenge's
    ``randint(0, 6)``), then its click; None when the class has no error left."""
    if step == 0:
        return "bbox", True, {"bbox": box_to_prompt(challenge_box(target, int(rng.integers(0, 6))))}
    click = challenge_click(target, prediction)
    return None if click is None else ("point", click[1], {"coords": click[0]})


def _measure(run: str, prediction: np.ndarray, target: np.ndarray, spacing, tolerance) -> tuple[float, float]:
    """Dice and NSD after a step: segfm3d's NSD by surfel areas as the challenge's (ungated: its DSC > 0.2 gate
    is a per-case rule, applied in `report.challenge_cases`), per-kind's by surface voxels (`metrics.nsd`)."""
    d = dice(prediction, target)
    if tolerance is None:
        return d, float("nan")
    if run == SEGFM3D_KIND:
        return d, surface_dice(target, prediction, (1.0, 1.0, 1.0) if spacing is None else spacing, tolerance)
    return d, nsd(prediction, target, spacing, tolerance)


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
            prompt = _segfm3d_prompt(step, target, prediction, rng)
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
            d, s = _measure(run, prediction, target, spacing, tolerance)
        row.update(dice=d, nsd=s)
        rows.append(row)
    return rows


def run_object(session, target: np.ndarray, buffer: np.ndarray, run: str, *, steps: int,
               rng: np.random.Generator, spacing: Sequence[float] | None = None,
               tolerance: float | None = 2.0) -> list[dict]:
    """Run one simulated user on one object through a session whose image and target buffer are set.

    Args:
        session: an ``nnInteractiveInferenceSession`` after ``set_image`` and ``set_target_buffer(buffer)``.
        target: bool (X, Y, Z), the object (for segfm3d: the whole class).
        buffer: the session's target buffer (uint8 (X, Y, Z)); it holds the prediction after each call.
        run: a per-kind kind ("point", "bbox", "lasso", "scribble", "random") or ``SEGFM3D_KIND``.
        steps: follow-ups after the initial prompt.
        rng: random source of the simulated prompts (segfm3d: of its box's widening only).
        spacing: voxel size in mm per axis, for the simulators and NSD (the challenge's click EDT is in voxels).
        tolerance: NSD tolerance in mm; None skips NSD (reported as NaN).

    Returns:
        ``steps + 1`` rows: step, prompts (= step + 1), prompt (the kind actually given, e.g. a point when a
        scribble could not be drawn, or "none"), positive, dice, nsd, seconds (the session call).
    """
    if run not in _RUNS:
        raise ValueError(f"unknown run {run!r}; expected one of {_RUNS}")
    return _run_steps(session, np.asarray(target, bool), buffer, run, steps=steps, rng=rng, spacing=spacing,
                      tolerance=tolerance)


def class_targets(label: np.ndarray, *, max_objects: int | None = None, order: str = "largest",
                  rng: np.random.Generator | None = None) -> list[TargetObject]:
    """The segfm3d targets: one per label value > 0 present (the challenge scores classes, not components, and
    has no minimum size), largest first (ties by value), capped like `find_objects`.

    Args:
        label: int (X, Y, Z).
        max_objects, order, rng: the cap, as in `find_objects` (the challenge itself scores every class).

    Returns:
        TargetObject per class: ``label`` the value, ``index`` its rank by size, ``crop`` its bounding box.
    """
    label = np.asarray(label)
    found = []
    for value in np.unique(label[label > 0]):
        mask = label == value
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
        found.append((int(np.count_nonzero(mask)), int(value), box, mask[box]))
    found.sort(key=lambda f: (-f[0], f[1]))
    targets = [TargetObject(value, i, n, tuple(b.start for b in box), np.ascontiguousarray(crop), tuple(label.shape))
               for i, (n, value, box, crop) in enumerate(found)]
    if max_objects is not None and len(targets) > max_objects:
        if order == "largest":
            return targets[:max_objects]
        if rng is None:
            raise ValueError("order='random' needs an rng")
        return [targets[int(i)] for i in np.sort(rng.choice(len(targets), size=max_objects, replace=False))]
    return targets


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
        label: int (X, Y, Z); per-kind's objects are the 26-connected components of each value > 0
            (`find_objects`), segfm3d's the classes (`class_targets`).
        spacing: voxel size in mm per array axis.
        rng: random source: object subsetting, then one seed per (object, run).
        protocols: subset of ``PROTOCOLS``; kinds: the per-kind runs to do (subset of ``PER_KIND``).
        steps: follow-ups after the initial prompt.
        tolerance: NSD tolerance in mm (None: no NSD).
        min_object_size, max_objects, object_order: see `find_objects` (segfm3d: only the cap applies).
        case: name written into the rows.
        on_run: called with the rows of each finished run (progress reporting).
        verbose: let the session print.

    Returns:
        rows (one per object (segfm3d: class), protocol, kind and step) and failures (runs the session raised on,
        with the error; their rows are left out).

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
    # (target, protocol, kind, seed) of every run; segfm3d's targets and seeds are drawn after the per-kind ones,
    # so that adding or dropping segfm3d leaves the per-kind runs unchanged.
    runs = [(obj, "per-kind", k, seeds[i, _RUNS.index(k)]) for i, obj in enumerate(objects)
            for k in PER_KIND if "per-kind" in protocols and k in kinds]
    if "segfm3d" in protocols:
        classes = class_targets(label, max_objects=max_objects, order=object_order, rng=rng)
        class_seeds = rng.integers(0, 2**63 - 1, size=len(classes))
        runs += [(c, "segfm3d", SEGFM3D_KIND, seed) for c, seed in zip(classes, class_seeds)]
    buffer = np.zeros(label.shape, np.uint8)
    rows, failures = [], []
    with quiet(not verbose):
        session.set_image(image.astype(np.float32, copy=False))
        session.set_target_buffer(buffer)
        for obj, protocol, kind, seed in runs:
            head = {"case": case, "object": obj.index, "label": obj.label, "voxels": obj.voxels,
                    "protocol": protocol, "kind": kind}
            try:
                got = run_object(session, obj.mask(), buffer, kind, steps=steps, rng=np.random.default_rng(int(seed)),
                                 spacing=spacing, tolerance=tolerance)
            except Exception as e:  # one failing run must not lose the case's other results
                failures.append({**head, "error": f"{type(e).__name__}: {e}"})
                continue
            got = [{**head, **r} for r in got]
            rows.extend(got)
            if on_run is not None:
                on_run(got)
    return rows, failures

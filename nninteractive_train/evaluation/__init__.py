"""Interactive evaluation through the public ``nninteractive`` inference session, with simulated users.

>>> session = load_session("model_dir", device="cpu", autozoom=False)
>>> rows, failures = evaluate_case(session, image, label, spacing, rng=np.random.default_rng(0), steps=5)

Protocols: ``per-kind`` (point, bbox, lasso, scribble and a random mix, each one initial prompt plus follow-ups)
and ``segfm3d`` (CVPR 2025 challenge, its own rules: per class, its box, then clicks at the EDT maximum of the
largest error component; NSD by surface elements; its per-case AUCs and finals). Metrics: Dice, NSD (tolerance in
mm), AUC over steps. ``interactive_validation`` runs the
per-kind protocol on an in-memory network during training. The command is ``nnInteractive_evaluate``.
"""

from nninteractive_train.evaluation.metrics import auc, dice, nsd, surface
from nninteractive_train.evaluation.objects import TargetObject, find_objects
from nninteractive_train.evaluation.protocols import (
    PER_KIND,
    PROTOCOLS,
    SEGFM3D_KIND,
    class_targets,
    evaluate_case,
    run_object,
)
from nninteractive_train.evaluation.report import COLUMNS, challenge_cases, plot, summarize, write_csv
from nninteractive_train.evaluation.segfm3d import case_metrics, challenge_auc, challenge_box, challenge_click
from nninteractive_train.evaluation.surface_distance import surface_dice, surface_distances
from nninteractive_train.evaluation.runner import CaseError, EvalOptions, evaluate_dataset, load_case
from nninteractive_train.evaluation.session import ModelLoadError, apply_prompt, load_session, session_from_network
from nninteractive_train.evaluation.validation import (interactive_validation, load_raw_validation_cases,
                                                       load_validation_cases)

__all__ = [
    "COLUMNS", "CaseError", "EvalOptions", "ModelLoadError", "PER_KIND", "PROTOCOLS", "SEGFM3D_KIND",
    "TargetObject", "apply_prompt", "auc", "case_metrics", "challenge_auc", "challenge_box", "challenge_cases",
    "challenge_click", "class_targets", "dice", "evaluate_case", "evaluate_dataset", "find_objects",
    "interactive_validation", "load_case", "load_raw_validation_cases", "load_validation_cases", "load_session",
    "nsd", "plot", "run_object", "session_from_network", "summarize", "surface", "surface_dice",
    "surface_distances", "write_csv",
]

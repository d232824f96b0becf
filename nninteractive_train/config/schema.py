"""Run configuration: dataclasses with documented defaults (torchtitan / lingua style).

A variant is a YAML file (``configs/*.yaml``) plus ``key=value`` overrides on the command line; the resolved
config is written into the run folder and into every checkpoint. Every field has a default so that a YAML file
only names what differs. Units: patch sizes in voxels, learning rate per step, times in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Network and patch geometry (written into the interactive plans configuration)."""

    configuration: str = "3d_fullres_ps192_bs24"
    """Name of the interactive configuration added to the plans (nnU-Net convention: ``<base>_ps<P>_bs<B>``)."""
    patch_size: list[int] = field(default_factory=lambda: [192, 192, 192])
    """Training patch size in voxels, (X, Y, Z) as nnU-Net stores it (after its transpose, identity here)."""
    global_batch_size: int = 24
    """Samples per optimiser step summed over all ranks; split across ranks by ``split_batch``."""
    base_features: int = 32
    """Features of the first stage; doubled per stage up to ``max_features`` (ResEnc-L: 32 → 320)."""
    max_features: int = 320
    """Cap on features per stage."""
    blocks_per_stage: list[int] = field(default_factory=lambda: [1, 3, 4, 6, 6, 6, 6])
    """Residual blocks per encoder stage (ResEnc-L); truncated or repeated to the number of stages."""
    max_stages: int = 7
    """Upper bound on encoder stages; fewer are used when the patch cannot be pooled further."""
    layout_spacing: list[float] | None = None
    """Voxel spacing (mm per axis) the stage layout is planned for: nnU-Net's rule turns it into pooling strides
    and conv kernel sizes (an axis more than twice as coarse as the finest gets 1-wide kernels and no pooling in
    the first stages). None = the data's median spacing, nnU-Net's choice; ``[1, 1, 1]`` = 3×3×3 kernels and
    pooling in every axis from the second stage (on the demo's data it learnt less in 1000 steps:
    docs/learning.md, "A size prior, not memorisation")."""
    export_patch_size: list[int] | None = None
    """Patch written into the exported plans; None = training patch, raised to at least 96 per axis (for a run
    started from a model folder: that folder's patch)."""
    pretrained: str | None = None
    """The nnInteractive model folder the run started from (set by ``--pretrained``; informational)."""
    architecture: dict[str, Any] | None = None
    """The network (nnU-Net plans ``architecture``: class name and ``arch_kwargs``) taken from the pretrained
    folder's plans.json at the start of the run, so that resume and export rebuild the same network; it overrides
    the width and depth fields above. None = derived from those fields and the data's spacing."""


@dataclass
class TrainingConfig:
    """Schedule, optimiser and checkpointing (loss and LR schedule are nnU-Net's: Dice+CE, poly SGD)."""

    num_epochs: int = 5000
    """Epochs to train (paper: 5000)."""
    iterations_per_epoch: int = 250
    """Optimiser steps per epoch (paper: 250)."""
    val_iterations_per_epoch: int = 50
    """nnU-Net pseudo-Dice validation batches per epoch (initial prompt only; feeds nnU-Net's progress plot)."""
    optimizer: str = "sgd"
    """``sgd``: nnU-Net's SGD (momentum 0.99, Nesterov), the paper's; ``adamw``: AdamW (betas 0.9/0.999), which
    learns several times faster in short CPU runs (docs/learning.md, "Why the demo learned slowly"). Both follow
    nnU-Net's poly schedule per epoch."""
    initial_lr: float = 1e-2
    """Learning rate at epoch 0 (nnU-Net's SGD: 1e-2; AdamW: 1e-3 to 3e-3)."""
    weight_decay: float = 3e-5
    """Weight decay (nnU-Net's SGD: 3e-5, L2; AdamW: decoupled, 1e-4 is usual)."""
    warmup_epochs: int = 0
    """Epochs of linear learning-rate warm-up before nnU-Net's poly decay (0 = none, as nnU-Net)."""
    freeze_encoder_epochs: int = 0
    """Epochs during which the encoder does not change (its learning rate is 0), so a pretrained encoder is not
    disturbed while the decoder adapts; 0 = never."""
    deep_supervision: bool = True
    """nnU-Net's deep supervision: the loss also on the decoder's lower-resolution outputs (weights 1/2^k). False
    scores the full-resolution output alone, as a plain loop does."""
    ema_decay: float | None = None
    """Keep an exponential moving average of the weights, updated after every step with this decay (warmed up
    from 0.1; 0.99 averages about the last 100 steps), and validate and export it instead of the last weights
    (``training/ema.py``). None: off, as nnU-Net and the paper."""
    seed: int = 0
    """Base seed; every rank and data worker derives its own stream from (seed, rank, worker)."""
    save_every: int = 50
    """Write ``checkpoint_latest.pth`` every N epochs (and on SIGTERM/SIGUSR1/SIGUSR2)."""
    compile: bool = False
    """torch.compile the network (GPU only; ignored on CPU)."""
    channels_last: bool = False
    """Network and batches in the channels-last (NDHWC) memory format: 1.3–1.6× faster CPU steps of the demo
    network (oneDNN's 3D convolutions); weights and results are the same layout-independent values."""
    cpu_bf16: bool = False
    """CPU only: the forward pass under bfloat16 autocast (the loss in float32), where the CPU has native bf16
    instructions (AVX512-BF16 or AMX; elsewhere float32, said in the log): 1.7-1.9x faster steps of the demo
    network on 2 Zen 4 cores. CUDA keeps nnU-Net's float16 autocast."""
    num_data_workers: int | None = None
    """nnU-Net augmentation processes per rank; None = nnUNet_n_proc_DA or nnU-Net's default."""
    interactive_val_every: int = 10
    """Every N epochs (and at the last), rank 0 runs simulated users on held-out cases through the inference
    session and logs ``val_dice_1..<steps + 1>`` (mean over kinds) and ``val_dice_1_<kind>`` to metrics.jsonl,
    beside ``train_minutes``: the learning curve; 0 = off."""
    interactive_val_cases: int = 2
    """Cases used by that validation (the largest ``interactive_val_objects`` objects of each)."""
    interactive_val_objects: int = 2
    """Objects per case in that validation."""
    interactive_val_steps: int = 2
    """Follow-up prompts after the first in that validation (0: Dice after the first prompt only)."""
    interactive_val_raw: str | None = None
    """Raw dataset (id, ``DatasetXXX_Name`` under nnUNet_raw, or a folder) whose cases the validation uses instead
    of the trainer's validation split: objects held out of training for an honest learning curve."""
    interactive_val_case_names: list[str] | None = None
    """Which cases of ``interactive_val_raw`` (None: its first ``interactive_val_cases``)."""
    fold: str = "all"
    """nnU-Net fold for the train/validation split: an integer, or "all" to train on every case."""
    dist_timeout_s: int = 900
    """Seconds a collective may wait for the other ranks before this rank gives up with an error (the
    process-group timeout): a rank that died or hangs stops the others within this bound instead of never.
    Must cover the slowest step plus a checkpoint write."""
    checkpoint_followups: bool = True
    """Checkpoints carry the follow-up batches waiting in each rank's pool (at most 3 batches per rank), so a
    resume continues bit-identically; false drops them (smaller checkpoints at large patches: 192³ × batch 3 is
    0.7 GB per batch; the resumed run then takes fresh batches where follow-ups were waiting)."""
    log_steps: bool = False
    """Append one JSON line per training iteration to ``RUN_DIR/iterations.jsonl`` (rank 0: epoch, iteration,
    loss, follow-up or fresh, the data worker and sampler position, the cases): for debugging and resume tests."""


@dataclass
class InteractionConfig:
    """User simulation: prompt kinds, agents, decay, follow-up ramp (paper values by default)."""

    kinds: list[str] = field(default_factory=lambda: ["point", "bbox", "lasso", "scribble"])
    """Prompt kinds the agents may use."""
    kind_weights: list[float] | None = None
    """Probability of each kind for an agent's first prompt; None = uniform."""
    agent_weights: dict[str, float] = field(
        default_factory=lambda: {"random": 1.0, "sunk_cost": 1.0, "single": 1.0}
    )
    """Relative frequency of the user agents drawn per sample."""
    slice_power: float = 1.0
    """The first 2D prompt (box, lasso, scribble) of a training sample lies on a slice drawn ∝ (object voxels on
    it)^slice_power, as the simulators draw it for evaluation at 1; 0 trains on every slice through the object
    alike, which lowered held-out Dice (docs/learning.md, "The plain loop at the demo's length")."""
    decay: float = 0.9
    """Factor applied to all existing prompt channels when a follow-up prompt is added."""
    p_followup_start: float = 0.3
    """Probability that a batch goes to the user-simulation pool after its prediction, at epoch 0."""
    p_followup_end: float = 0.75
    """The same at the last epoch; linear in between."""
    max_interactions: int = 16
    """A sample stops receiving follow-ups after this many prompts (bounds a session)."""
    num_sim_workers: int = 2
    """User-simulation processes per rank (0 = in the trainer process)."""


@dataclass
class DataConfig:
    """Data sampling and augmentation knobs."""

    supervoxel_prob: float = 0.2
    """Probability of training on a SuperVoxel pseudo-object of the case (when it has any)."""
    object_size_power: float = 0.0
    """Objects of a case are drawn ∝ voxels^object_size_power: 0 = uniformly, the paper's rule; 0.5 draws an object
    of 4,000 voxels twice as often as one of 1,000 (docs/learning.md, "A size prior, not memorisation")."""
    center_bias: float = 1.0
    """Exponent on the normalised distance-to-border used to pick a patch centre inside an object (0 = uniform
    over the object). Applied when the centre candidates are drawn, i.e. by ``nnInteractive_plan_and_preprocess
    --config`` (objects) and ``nnInteractive_generate_supervoxels`` (which takes the value recorded by the
    preprocessing); training checks that its value is the one the candidates were drawn with."""
    p_scaling: float = 0.3
    """Probability of the scaling augmentation (nnU-Net: 0.2)."""
    scaling: list[float] = field(default_factory=lambda: [0.5, 2.0])
    """Scaling range (nnU-Net: [0.7, 1.4])."""
    p_independent_scale_per_axis: float = 0.6
    """Probability that each axis gets its own scale factor."""
    p_transpose: float = 0.5
    """Probability of a random transpose of axes with equal patch extent."""
    p_invert: float = 0.1
    """Probability of intensity inversion."""
    augment: bool = True
    """False turns every training augmentation off (spatial and intensity; nnU-Net's ``nnUNetTrainerNoDA``), for
    ablations and for checking what the augmentation costs at a given budget."""


@dataclass
class RunConfig:
    """The whole resolved configuration of one training run."""

    name: str = "nninteractive"
    """Experiment name (informational; the run folder identifies the run)."""
    plans_identifier: str = "nnInteractivePlans"
    """Plans file name (without .json) written by nnInteractive_plan_and_preprocess."""
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    interaction: InteractionConfig = field(default_factory=InteractionConfig)
    data: DataConfig = field(default_factory=DataConfig)

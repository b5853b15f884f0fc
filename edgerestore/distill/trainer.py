"""The distillation trainer: AdamW, cosine schedule with warm-up, EMA weights, atomic and
resumable checkpoints, CSV and TensorBoard logs, and DistributedDataParallel under ``torchrun``.

A run lives in one folder (``out``)::

    config.yaml   the resolved configuration (``--resume`` reads it back)
    last.pt       student checkpoint (EMA weights) + the training state; written every
                  ``train.checkpoint_every`` steps, at the end, and on SIGINT/SIGTERM
    best.pt       the checkpoint with the best validation PSNR so far
    student.pt    the final student (EMA weights), written when the run completes
    log.csv       one row every ``train.log_every`` steps: step, lr, losses, val PSNR, speed
    tb/           TensorBoard events (when tensorboard is installed)

Every ``.pt`` is the standard student format of :mod:`edgerestore.models.checkpoint`, so
``edgerestore restore --model out/student.pt`` and ``edgerestore export`` take any of them.

Resuming is exact: the learning rate is a pure function of the step, the data stream and the
patches of a step are pure functions of the seed and the step (:mod:`edgerestore.distill.data`),
and the optimizer, weights and EMA are restored, so a run stopped and resumed reaches the same
step count with the same schedule as an uninterrupted one.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every process trains on its own crops, gradients are
averaged by DDP (NCCL on GPUs, gloo on CPUs), validation is sharded with a DistributedSampler, and
only rank 0 writes files. The same command without ``torchrun`` runs in one process.
"""

from __future__ import annotations

import copy
import csv
import gc
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from edgerestore.distill import data as D
from edgerestore.distill import degrade as deg
from edgerestore.distill.config import DistillConfig, save_config
from edgerestore.distill.losses import DistillLoss, FeatureAdapter
from edgerestore.distill.teacher import (
    NoTeacher,
    Teacher,
    create_teacher,
    feature_channels,
    fill_targets,
    match_features,
    open_cache,
    route_targets,
    to_batch,
)
from edgerestore.errors import CheckpointError, ConfigError, InputNotFoundError
from edgerestore.models.checkpoint import load_student, save_student
from edgerestore.models.config import StudentConfig
from edgerestore.models.motion import flow_at_stride, warp
from edgerestore.models.presets import PRESETS, get_preset
from edgerestore.models.student import StudentNet

CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"
CHECKPOINT_FINAL = "student.pt"
CONFIG_FILE = "config.yaml"
LOG_FILE = "log.csv"


# --------------------------------------------------------------------------- pieces


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = torch.device("cpu")
    owned: bool = False
    """Whether we initialised the process group (and so must destroy it)."""

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: List[float]) -> List[float]:
        if self.world == 1:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def pick_device(device_spec: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's GPU when CUDA is available, else the CPU."""
    spec = (device_spec or "auto").lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device=%s but CUDA is not available here; use train.device=cpu" % device_spec)
        device = torch.device("cuda", local_rank) if spec == "cuda" else torch.device(spec)
        torch.cuda.set_device(device)
        return device
    if spec != "cpu":
        raise ConfigError("train.device=%r; choose auto, cpu, cuda or cuda:N" % device_spec)
    return torch.device("cpu")


def setup_distributed(device_spec: str = "auto") -> Distributed:
    """Join the ``torchrun`` process group if there is one; pick the device of this process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    device = pick_device(device_spec, local_rank)
    owned = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owned = True
    return Distributed(rank, world, local_rank, local_world, device, owned)


def data_workers(config: DistillConfig, processes: int = 1, gpu: bool = False) -> int:
    """``data.workers``, or (-1, auto) a share of this machine's cores for degrading crops."""
    if config.data.workers >= 0:
        return config.data.workers
    cores = max(1, (os.cpu_count() or 1) // processes)
    return max(1, min(8, cores - 1)) if gpu else max(1, cores // 4)


def default_threads(config: DistillConfig, processes: int = 1, workers: int = 0) -> int:
    """torch threads of one process: ``train.threads``, or this machine's cores shared by the
    processes, minus the data workers. Oversubscribing matters: on a busy 2-core machine a pico
    step took 590 ms with 2 torch threads and 37 ms with 1 (tiny kernels wait on each other)."""
    if config.train.threads:
        return config.train.threads
    return max(1, (os.cpu_count() or 1) // processes - workers)


def lr_at(step: int, steps: int, optim) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then cosine to ``min_lr`` (or constant)."""
    warmup = min(optim.warmup, max(0, steps - 1))
    if step < warmup:
        return optim.lr * (step + 1) / warmup
    if optim.schedule == "constant":
        return optim.lr
    progress = (step - warmup) / max(1, steps - warmup)
    return optim.min_lr + (optim.lr - optim.min_lr) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class EMA:
    """Exponential moving average of the weights (with the usual warm-up of the decay)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for ema, live in zip(self.model.parameters(), model.parameters()):
            ema.mul_(d).add_(live.detach(), alpha=1.0 - d)
        for ema, live in zip(self.model.buffers(), model.buffers()):
            ema.copy_(live)


class StopSignal:
    """Remember SIGINT/SIGTERM instead of dying, so the trainer can finish the step and save."""

    def __init__(self):
        self.received: Optional[int] = None
        self._previous = {}

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.received = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class RunLog:
    """log.csv (rewritten up to the resumed step, then appended) and TensorBoard events."""

    def __init__(self, out: Path, columns: List[str], resume_step: int, echo: Callable[[str], None]):
        self.path = out / LOG_FILE
        self.columns = columns
        rows = []
        if resume_step > 0 and self.path.is_file():
            with open(self.path, newline="") as handle:
                rows = [r for r in csv.DictReader(handle) if int(r["step"]) <= resume_step]
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)
        self.handle = open(self.path, "a", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=columns, extrasaction="ignore")
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"), purge_step=resume_step or None)
        except ImportError:
            echo("note: tensorboard is not installed (pip install tensorboard); logging to log.csv only")

    def write(self, row: Dict[str, object]) -> None:
        self.writer.writerow({k: ("%.6g" % v if isinstance(v, float) else v) for k, v in row.items()})
        self.handle.flush()
        if self.tb is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and value == value:
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        self.handle.close()
        if self.tb is not None:
            self.tb.close()


class _TrainNet(nn.Module):
    """The student (+ the feature adapter): one module, so that DDP averages both."""

    def __init__(self, student: StudentNet, adapter: Optional[nn.Module]):
        super().__init__()
        self.student = student
        self.adapter = adapter
        self._features = None
        if adapter is not None:
            # The tail's input is what StudentNet.features() returns.
            student.tail.register_forward_pre_hook(self._capture)

    def _capture(self, module, inputs):
        self._features = inputs[0]

    def forward(self, x: torch.Tensor, frames: int = 0, flows: Optional[torch.Tensor] = None,
                level: Optional[torch.Tensor] = None, codec: Optional[torch.Tensor] = None,
                blur: Optional[torch.Tensor] = None):
        """``x``: a batch of crops, or ``[B*T, 3, H, W]`` clips of ``frames`` frames (clip-major),
        with their ``flows`` for a motion-compensated student (:func:`clip_flows`); ``level``: each
        crop's noise level, for a ``level_input`` student; ``codec``: its codec strengths, for a
        ``codec_input`` one; ``blur``: its blur descriptor, for a ``blur_input`` one."""
        if frames > 1 and self.student.temporal:
            out = run_clips(self.student, x, frames, quantize_state=True, flows=flows)
        else:
            out = self.student(x, level=level, codec=codec, blur=blur)
        if self.adapter is None:
            return out, None, None
        features, self._features = self._features, None
        return out, self.adapter(features), features


def student_config(section) -> StudentConfig:
    """The architecture of ``student.*``: a preset's, with ``student.config`` fields replaced."""
    preset = get_preset(section.preset)
    try:
        return StudentConfig.from_dict({**preset.config.to_dict(), **section.config})
    except (TypeError, ValueError) as exc:
        raise ConfigError("student.config: %s; fields: %s" % (exc, ", ".join(StudentConfig().to_dict()))) from exc


def _to_8_bits(frame: torch.Tensor) -> torch.Tensor:
    """``frame`` rounded to 8 bits, with a straight-through gradient."""
    stored = torch.round(frame.clamp(0.0, 1.0) * 255.0) / 255.0
    return frame + (stored - frame).detach()


def run_clips(student: StudentNet, x: torch.Tensor, frames: int, quantize_state: bool = False,
              flows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Run ``student`` over clips ``[B*T, 3, H, W]`` (clip-major) frame after frame, carrying a
    temporal student's state from each frame to the next (others see the frames alone).

    ``quantize_state`` rounds the fed-back output frame to 8 bits as the exported models do (their
    state is the uint8 output), with a straight-through gradient. A motion-compensated student
    (``config.motion``) needs the clips' ``flows`` ``[B*T, 2, H, W]`` (:func:`clip_flows`): its state
    is warped by them before each frame, as the runtime does (the warped frame rounded again: the
    runtime warps the uint8 frame).
    """
    if not student.temporal:
        return student(x)
    motion = student.config.motion
    if motion and flows is None:
        raise ValueError("a motion-compensated student needs the clips' flows (trainer.clip_flows)")
    clips = x.reshape(-1, frames, *x.shape[1:])
    steps = flows.reshape(-1, frames, *flows.shape[1:]) if motion else None
    outputs, state = [], None
    for t in range(frames):
        if state is not None and motion:
            previous, hidden = state
            previous = warp(previous, steps[:, t])
            hidden = warp(hidden, flow_at_stride(steps[:, t], student.config.scale))
            state = (_to_8_bits(previous) if quantize_state else previous, hidden)
        out, (previous, hidden) = student.step(clips[:, t], state)
        outputs.append(out)
        state = (_to_8_bits(previous) if quantize_state else previous, hidden)
    return torch.stack(outputs, 1).reshape(x.shape)


def clip_flows(degraded: np.ndarray, device) -> torch.Tensor:
    """The flows a motion-compensated student's state moves by, computed like the runtime does on
    the degraded frames: clips ``[B, T, H, W, 3]`` (or one ``[T, H, W, 3]``) uint8 ->
    ``[B*T, 2, H, W]`` float (frame ``t`` to ``t - 1``; zeros for frame 0)."""
    from edgerestore.runtime.motion import FlowEstimator
    from edgerestore.runtime.motion import clip_flows as numpy_flows

    estimator = FlowEstimator()
    clips = degraded if degraded.ndim == 5 else degraded[None]
    fields = np.stack([numpy_flows(np.ascontiguousarray(clip), estimator) for clip in clips])
    fields = fields.reshape(-1, *fields.shape[2:])
    return torch.from_numpy(np.ascontiguousarray(fields.transpose(0, 3, 1, 2))).to(device)


def build_student(section, seed: int):
    """The student of ``student.*``: ``(model, preset name or None)``."""
    config = student_config(section)
    name = next((p.name for p in PRESETS.values() if p.config == config), None)
    torch.manual_seed(seed)
    if section.init:
        model, _ = load_student(section.init, expect=config, grow=True)
        model.train()
    else:
        model = StudentNet(config)
    return model, name


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of one image after rounding to 8 bits, as a deployed model outputs it."""
    out = torch.round(output.clamp(0, 1) * 255.0)
    mse = torch.mean((out - torch.round(target * 255.0)) ** 2).item()
    return 99.0 if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def frames_batch(array: np.ndarray, device) -> torch.Tensor:
    """A crop ``HxWx3`` -> ``[1, 3, H, W]``; a clip ``TxHxWx3`` -> ``[T, 3, H, W]`` (floats in [0, 1])."""
    return to_batch(list(array) if array.ndim == 4 else [array], device)


def temporal_error(output: torch.Tensor, clean: torch.Tensor) -> float:
    """Mean |change of the 8-bit output - change of the ground truth| between consecutive frames of
    one clip ``[T, 3, H, W]``, in 0-255 levels (the flicker the output adds; 0 = none)."""
    out = torch.round(output.clamp(0, 1) * 255.0)
    gt = torch.round(clean * 255.0)
    return float(((out[1:] - out[:-1]) - (gt[1:] - gt[:-1])).abs().mean())


# --------------------------------------------------------------------------- data setup


@dataclass
class Prepared:
    """What both training and cache-teacher need: the data, the teacher, its cache."""

    train: D.Renderer
    val: D.Renderer
    counts: Dict[str, int]
    teacher: Teacher
    cache: Optional[object]
    needs_outputs: bool
    needs_features: bool


def prepare(config: DistillConfig, device, echo: Callable[[str], None] = print, multiple: int = 8) -> Prepared:
    """Load the data into memory, split it, create the teacher and open its cache."""
    if not config.data.train:
        raise InputNotFoundError("no training data: pass image folders, paired folders or videos "
                                 "(edgerestore distill DATA... or data.train in the config)")
    teacher = create_teacher(config.teacher, device)  # first: a bad teacher fails before the data loads
    items, counts = D.load_items(config.data.train, config.data.video_stride, config.data.video_max_frames,
                                 exclude=config.data.exclude, memory_mb=config.data.memory_mb)
    clips_mode = config.data.sequence > 1
    if config.data.clips and not clips_mode:
        raise ConfigError("data.clips are for sequence training: set data.sequence >= 2 (e.g. 5)")
    if config.data.val:
        train_items = items
        val_items = D.load_items(config.data.val, config.data.video_stride, config.data.video_max_frames)[0]
        if not clips_mode:
            val_items = D.representatives(val_items)
    else:
        train_items, val_items = D.split_items(items, config.data.val_count, config.train.seed, whole_groups=clips_mode)
    if clips_mode and config.data.clips:
        clip_items, clip_counts = D.load_clips(config.data.clips, config.data.video_max_frames)
        train_items = train_items + clip_items
        counts.update(clip_counts)
    D.check_sizes(train_items, config.data.patch)
    loss = config.loss
    uses_outputs = loss.teacher > 0 or (loss.target == "teacher" and (loss.ms_ssim > 0 or loss.freq > 0))
    needs_outputs = not isinstance(teacher, NoTeacher) and uses_outputs
    needs_features = not isinstance(teacher, NoTeacher) and loss.feature > 0
    if isinstance(teacher, NoTeacher) and loss.target == "teacher" and (loss.ms_ssim > 0 or loss.freq > 0):
        raise ConfigError("loss.target=teacher needs a teacher (--teacher ...)")
    if needs_features and not teacher.live:
        raise ConfigError("feature distillation (loss.feature > 0) needs a teacher that runs here, not %s"
                          % teacher.description)
    teacher.attach(train_items)
    teacher.attach(val_items)
    cache = open_cache(teacher, config.teacher.cache) if (needs_outputs or teacher.kind == "folder") else None
    if clips_mode:
        d = config.data
        renderers = [D.ClipRenderer(its, degradation, length, d.motion, d.vary, d.clip_share)
                     for its, length, degradation in ((train_items, d.sequence, d.degradation),
                                                      (val_items, d.val_frames, D.validation_degradation(d)))]
    else:
        architecture = student_config(config.student)
        levels, codecs, blurs = architecture.level_input, architecture.codec_input, architecture.blur_input
        qp = config.data.codec_qp
        renderers = [D.Renderer(train_items, config.data.degradation, config.data.weights, levels=levels,
                                align=config.data.align, codecs=codecs, codec_qp=qp, blurs=blurs),
                     D.Renderer(val_items, D.validation_degradation(config.data), levels=levels, codecs=codecs,
                                codec_qp=qp, blurs=blurs)]
    check_route(config, renderers[0], teacher)
    return Prepared(renderers[0], renderers[1], counts, teacher, cache, needs_outputs, needs_features)


def check_route(config: DistillConfig, renderer, teacher) -> None:
    """``teacher.route`` names crops this run has: mix components and ``pairs``."""
    route = config.teacher.route
    if not route:
        return
    if isinstance(teacher, NoTeacher):
        raise ConfigError("teacher.route picks the crops a teacher's output is the target of; set --teacher too")
    degradation = renderer.degradation
    names = [name for name, _, _ in degradation.components] if isinstance(degradation, D.deg.DegradationMix) else ["all"]
    valid = names + ["pairs"]
    unknown = [name for name in route if name not in valid]
    if unknown:
        raise ConfigError("teacher.route: %s %s not among this run's crops; choose from: %s" % (
            ", ".join(unknown), "is" if len(unknown) == 1 else "are", ", ".join(valid)))


def total_samples(config: DistillConfig) -> int:
    """Crops one process draws in a whole run: the pool plus ``refresh`` after every step but the last."""
    return config.data.pool + max(0, config.train.steps - 1) * config.data.refresh


def val_multiple(stride: int) -> int:
    """Validation crops are multiples of 16 (and of the student's stride), so that every preset
    scores the same crops and their teacher outputs are cached once."""
    return 16 * stride // math.gcd(16, stride)


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """One run (see the module docstring). ``run()`` returns a summary dict."""

    def __init__(self, config: DistillConfig, resume: bool = False, progress: bool = True,
                 echo: Callable[[str], None] = print):
        self.config = config
        self.resume = resume
        self.progress = progress
        self._echo = echo
        self.out = Path(config.out)

    def echo(self, text: str) -> None:
        if self.dist.main:
            if getattr(self, "bar", None) is not None:
                self.bar.write(text)
            else:
                self._echo(text)

    # ----------------------------------------------------------------- setup

    def _check_out(self) -> Optional[dict]:
        last = self.out / CHECKPOINT_LAST
        if self.resume:
            if not last.is_file():
                raise InputNotFoundError("nothing to resume in %s (no %s); start the run without --resume"
                                         % (self.out, CHECKPOINT_LAST))
            _, info = load_student(last)
            state = info.get("meta", {}).get("train_state")
            if not state:
                raise CheckpointError("%s has no training state to resume from" % last)
            return info
        if last.exists():
            raise ConfigError("%s already holds a run (%s); continue it with --resume or choose another --out"
                              % (self.out, CHECKPOINT_LAST))
        return None

    def _setup(self) -> None:
        c = self.config
        self.dist = setup_distributed(c.train.device)
        self.bar = None
        self.workers = data_workers(c, self.dist.local_world, self.dist.device.type == "cuda")
        torch.set_num_threads(default_threads(c, self.dist.local_world, self.workers))
        self.saved = self._check_out()
        self.student, self.preset = build_student(c.student, c.train.seed)
        if self.student.temporal and c.data.sequence < 2:
            raise ConfigError("%s is a temporal student: it learns on clips; set data.sequence >= 2 (e.g. "
                              "--set data.sequence=5)" % (self.preset or "this student"))
        stride = self.student.stride
        if c.data.patch % stride:
            raise ConfigError("data.patch=%d must be a multiple of the student's stride %d" % (c.data.patch, stride))
        self.prepared = prepare(c, self.dist.device, self.echo)
        p = self.prepared
        self.student.to(self.dist.device)
        adapter = None
        if p.needs_features:
            adapter = FeatureAdapter(self.student.config.width, feature_channels(p.teacher, self.dist.device))
            adapter.to(self.dist.device)
        self.net = _TrainNet(self.student, adapter)
        self.ddp = self.net
        if self.dist.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.dist.device.index] if self.dist.device.type == "cuda" else None)
        decay, no_decay = [], []
        for parameter in self.net.parameters():
            if parameter.requires_grad:  # not a gate held where it starts (student.gate_learned)
                (decay if parameter.ndim > 1 else no_decay).append(parameter)
        o = c.optim
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=o.lr, betas=tuple(o.betas))
        self.ema = EMA(self.student, o.ema) if o.ema > 0 else None
        self.loss = DistillLoss(c.loss, with_teacher=p.needs_outputs or p.needs_features)
        self.step = 0
        self.best_psnr = -math.inf
        self.cache_hits = 0
        if self.saved is not None:
            self._restore(self.saved["meta"]["train_state"])
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(c, self.out / CONFIG_FILE)

    def _restore(self, state: dict) -> None:
        self.net.student.load_state_dict(state["model"])
        if state.get("adapter") is not None and self.net.adapter is not None:
            self.net.adapter.load_state_dict(state["adapter"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.model.load_state_dict(state["ema"])
        self.step = int(state["step"])
        self.best_psnr = float(state.get("best_psnr", -math.inf))
        if int(state.get("world_size", 1)) != self.dist.world:
            self.echo("note: resuming a %d-process run with %d processes: same schedule, other crops"
                      % (state.get("world_size", 1), self.dist.world))

    @property
    def deliverable(self) -> StudentNet:
        """The weights that checkpoints hold and validation scores: the EMA when enabled."""
        return self.ema.model if self.ema is not None else self.net.student

    # ----------------------------------------------------------------- data

    def _samples(self, samples: List[dict]) -> List[dict]:
        """Give fresh samples their teacher outputs (from the cache, or computed)."""
        p = self.prepared
        if not p.needs_outputs:
            return samples
        self.cache_hits += sum(1 for s in samples if s.get("teacher") is not None)
        route_targets(samples, self.config.teacher.route)
        fill_targets(p.teacher, p.cache, samples, self.config.teacher.batch, self.dist.device)
        return samples

    def _fill_pool(self) -> None:
        c, p = self.config, self.prepared
        refresh = c.data.refresh
        first = self.step * refresh
        count = c.data.pool + max(0, c.train.steps - self.step - 1) * refresh
        lookup = p.cache.get if (p.cache is not None and p.needs_outputs) else None
        self.stream = D.sample_stream(p.train, c.data.crop, c.train.seed, first, count, self.dist.rank,
                                      self.dist.world, self.workers, lookup, prefetch=max(8, 2 * refresh))
        self.pool = D.Pool(c.data.pool)
        bar = None
        if self.progress and self.dist.main:
            from tqdm import tqdm

            bar = tqdm(total=c.data.pool, desc="filling the pool", unit="crop", leave=False, disable=None)
        chunk: List[dict] = []
        for _ in range(c.data.pool):
            chunk.append(next(self.stream))
            if len(chunk) >= max(1, c.teacher.batch):
                self._put(chunk, bar)
                chunk = []
        self._put(chunk, bar)
        if bar is not None:
            bar.close()

    def _put(self, chunk: List[dict], bar) -> None:
        for sample in self._samples(chunk):
            self.pool.put(sample)
        if bar is not None:
            bar.update(len(chunk))

    def _refresh(self) -> None:
        fresh = [next(self.stream) for _ in range(self.config.data.refresh)]
        for sample in self._samples(fresh):
            self.pool.put(sample)

    def _validation_set(self) -> None:
        c, p = self.config, self.prepared
        lookup = p.cache.get if p.cache is not None else None
        samples = D.validation_samples(p.val, c.data.val_crop, val_multiple(self.student.stride), c.train.seed, lookup)
        indices = list(torch.utils.data.DistributedSampler(
            range(len(samples)), num_replicas=self.dist.world, rank=self.dist.rank, shuffle=False))
        # DistributedSampler pads with repeats to a multiple of the world size; score each image once.
        self.val_samples = [samples[i] for n, i in enumerate(indices) if n * self.dist.world + self.dist.rank < len(samples)]
        self.val_count = len(samples)
        scores = [0.0, 0.0, float(len(self.val_samples))]
        with_teacher = p.needs_outputs
        for sample in self.val_samples:
            clean = frames_batch(sample["clean"], self.dist.device)
            scores[0] += psnr(frames_batch(sample["degraded"], self.dist.device), clean)
        taught = 0.0
        if with_teacher:
            self.cache_hits += sum(1 for s in self.val_samples if s.get("teacher") is not None)
            route_targets(self.val_samples, c.teacher.route)
            fill_targets(p.teacher, p.cache, self.val_samples, c.teacher.batch, self.dist.device)
            for sample in self.val_samples:
                if sample["teacher"] is sample["clean"]:
                    continue  # routed to the ground truth: no teacher PSNR to count
                taught += 1.0
                scores[1] += psnr(frames_batch(sample["teacher"], self.dist.device),
                                  frames_batch(sample["clean"], self.dist.device))
        total = self.dist.all_sum(scores + [taught])
        n = max(1.0, total[2])
        self.input_psnr = total[0] / n if total[2] else float("nan")
        self.teacher_psnr = total[1] / total[3] if (total[3] and with_teacher) else float("nan")

    @torch.no_grad()
    def validate(self) -> float:
        """Mean PSNR of the deliverable on the validation crops (clips: over all their frames, a
        temporal student running frame after frame); clips also set ``self.val_temporal``."""
        model = self.deliverable
        was_training = model.training
        model.eval()
        total, count, temporal = 0.0, 0.0, 0.0
        for sample in self.val_samples:
            x = frames_batch(sample["degraded"], self.dist.device)
            clean = frames_batch(sample["clean"], self.dist.device)
            if sample["clean"].ndim == 4:
                flows = clip_flows(sample["degraded"], self.dist.device) if model.config.motion else None
                out = run_clips(model, x, len(x), quantize_state=True, flows=flows)
                temporal += temporal_error(out, clean)
            else:
                codec = torch.tensor(sample["codec"], device=self.dist.device) if "codec" in sample else None
                blur = torch.tensor(deg.blur_descriptor(sample["blur"]), device=self.dist.device) if "blur" in sample else None
                out = model(x, level=float(sample.get("level", 0.0)), codec=codec, blur=blur)
            total += psnr(out, clean)
            count += 1
        model.train(was_training)
        total, count, temporal = self.dist.all_sum([total, count, temporal])
        self.val_temporal = temporal / count if count and self.config.data.sequence > 1 else float("nan")
        return total / count if count else float("nan")

    # ----------------------------------------------------------------- checkpoints

    def _meta(self, val_psnr: float, with_state: bool) -> dict:
        c, p = self.config, self.prepared
        meta = {
            "step": self.step, "steps": c.train.steps, "val_psnr": val_psnr,
            "best_val_psnr": self.best_psnr if self.best_psnr > -math.inf else None,
            "input_psnr": self.input_psnr, "teacher_psnr": self.teacher_psnr,
            "teacher": p.teacher.description, "teacher_sha256": p.teacher.sha256,
            "data": D.describe_counts(p.counts), "degradation": c.data.degradation,
            "world_size": self.dist.world, "config": c.to_dict(), "weights": "ema" if self.ema else "raw",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if with_state:
            meta["train_state"] = {
                "step": self.step, "model": {k: v.detach().cpu() for k, v in self.net.student.state_dict().items()},
                "adapter": self.net.adapter.state_dict() if self.net.adapter is not None else None,
                "optimizer": self.optimizer.state_dict(),
                "ema": self.ema.model.state_dict() if self.ema is not None else None,
                "best_psnr": self.best_psnr, "world_size": self.dist.world,
            }
        return meta

    def save(self, name: str, val_psnr: float = float("nan"), with_state: bool = True) -> Path:
        """Write a student checkpoint (rank 0 only; atomic)."""
        path = self.out / name
        if self.dist.main:
            model = self.deliverable
            save_student(path, model, preset=self.preset, meta=self._meta(val_psnr, with_state))
        return path

    # ----------------------------------------------------------------- the loop

    def train_step(self) -> Dict[str, float]:
        c, p = self.config, self.prepared
        rng = np.random.default_rng([c.train.seed, 11, self.dist.rank, self.step])
        arrays = self.pool.draw(rng, c.train.batch, c.data.patch, c.data.augment, with_teacher=p.needs_outputs,
                                align=c.data.align)
        device = self.dist.device
        frames = arrays["clean"].shape[1] if arrays["clean"].ndim == 5 else 0

        def batch(name):  # clips are flattened clip-major: [B*T, 3, H, W]
            values = arrays[name]
            return to_batch(list(values.reshape(-1, *values.shape[-3:])), device)

        x, clean = batch("degraded"), batch("clean")
        target = batch("teacher") if p.needs_outputs else None
        lr = lr_at(self.step, c.train.steps, c.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        teacher_features = None
        if p.needs_features:
            _, teacher_features = p.teacher.outputs_and_features(x)
        needs_flows = frames > 1 and (self.student.config.motion or c.loss.steady > 0)
        flows = clip_flows(arrays["degraded"], device) if needs_flows else None
        level = torch.from_numpy(arrays["level"]).to(device)
        codec = torch.from_numpy(arrays["codec"]).to(device)
        blur = torch.from_numpy(arrays["blur"]).to(device)
        out, adapted, student_features = self.ddp(x, frames, flows, level, codec, blur)
        if teacher_features is not None:
            teacher_features = match_features(teacher_features, student_features.shape[-2:])
        loss, terms = self.loss(out, clean, target, adapted, teacher_features, frames=frames, flows=flows,
                                degraded=x)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), c.optim.grad_clip)
        self.optimizer.step()
        self.net.student.constrain()
        if self.ema is not None:
            self.ema.update(self.net.student, self.step)
        self.step += 1
        terms["loss"] = float(loss.detach())
        terms["lr"] = lr
        return terms

    def run(self) -> dict:
        started = time.time()
        self._setup()
        try:
            summary = self._run(started)
        except BaseException:
            if self.dist.owned and dist.is_initialized():
                dist.destroy_process_group()
            raise
        self._leave_process_group()
        return summary

    def _leave_process_group(self) -> None:
        """After a finished run: every rank drops its DDP wrapper (and the gloo work it holds) and
        leaves together. A rank that tore the group down while another still held gloo work
        aborted now and then at exit ("terminate called without an active exception")."""
        if not (self.dist.owned and dist.is_initialized()):
            return
        self.dist.barrier()
        self.ddp = None
        gc.collect()
        dist.destroy_process_group()

    def _announce(self) -> None:
        """One line on the student, teacher, data and processes; one on the validation set."""
        p = self.prepared
        student_macs = None
        try:
            from edgerestore.models.macs import macs_per_pixel

            s = self.student.stride * 8
            student_macs = macs_per_pixel(self.net.student, s, s)
        except Exception:
            pass
        self.echo("student %s (%s, %s MACs/px) | teacher %s | data: %s (%d held out) | %d process(es) on %s, "
                  "%d torch thread(s) + %d data worker(s) each" % (
                      self.preset or "custom", ", ".join("%s=%s" % kv for kv in self.student.config.to_dict().items()),
                      "%.0f" % student_macs if student_macs else "?", p.teacher.description,
                      D.describe_counts(p.counts), len(p.val.items), self.dist.world, self.dist.device,
                      torch.get_num_threads(), self.workers))
        if self.saved is not None:
            self.echo("resuming %s at step %d of %d" % (self.out, self.step, self.config.train.steps))
        self._validation_set()
        self.echo("validation: %d crop(s); input %.2f dB%s" % (
            self.val_count, self.input_psnr,
            "; teacher %.2f dB" % self.teacher_psnr if self.teacher_psnr == self.teacher_psnr else ""))

    def _summary(self, started: float, val_psnr: float, interrupted, final, last) -> dict:
        calls, hits = self.dist.all_sum([self.prepared.teacher.calls, self.cache_hits])
        return {
            "out": str(self.out), "step": self.step, "steps": self.config.train.steps,
            "interrupted": signal.Signals(interrupted).name if interrupted else None,
            "val_psnr": val_psnr, "best_val_psnr": self.best_psnr if self.best_psnr > -math.inf else None,
            "input_psnr": self.input_psnr, "teacher_psnr": self.teacher_psnr,
            "teacher_calls": int(calls), "cache_hits": int(hits),
            "checkpoint": str(final or last), "last": str(last), "best": str(self.out / CHECKPOINT_BEST),
            "seconds": time.time() - started, "world_size": self.dist.world, "rank": self.dist.rank,
        }

    def _run(self, started: float) -> dict:
        c, p = self.config, self.prepared
        self._announce()
        columns = ["step", "lr", "loss"] + self.loss.active + ["val_psnr"]
        if c.data.sequence > 1:
            columns.append("val_temporal")
        columns += ["sec_per_step", "teacher_calls"]
        self.val_temporal = float("nan")
        log = RunLog(self.out, columns, self.step, self.echo) if self.dist.main else None
        interrupted = None
        val_psnr = float("nan")
        if self.saved is not None and self.saved["meta"].get("val_psnr") is not None:
            val_psnr = float(self.saved["meta"]["val_psnr"])
        start_step = self.step
        with StopSignal() as stop:
            self._fill_pool()
            if self.progress and self.dist.main:
                from tqdm import tqdm

                self.bar = tqdm(total=c.train.steps, initial=self.step, desc="distilling", unit="step",
                                dynamic_ncols=True, disable=None)
            sums: Dict[str, float] = {}
            count, tick = 0, time.time()
            while self.step < c.train.steps:
                terms = self.train_step()
                if self.step < c.train.steps and c.data.refresh:
                    self._refresh()
                for key, value in terms.items():
                    sums[key] = sums.get(key, 0.0) + value
                count += 1
                # one collective per step: averages the loss and agrees on stopping
                reduced = self.dist.all_sum([terms["loss"], 1.0 if stop.received else 0.0])
                stopping = reduced[1] > 0
                validated = self.step % c.train.val_every == 0 or self.step == c.train.steps
                if validated:
                    val_psnr = self.validate()
                    if val_psnr > self.best_psnr:
                        self.best_psnr = val_psnr
                        self.save(CHECKPOINT_BEST, val_psnr, with_state=False)
                if self.bar is not None:
                    self.bar.update(1)
                    self.bar.set_postfix(loss="%.4f" % (reduced[0] / self.dist.world),
                                         val_psnr="%.2f" % val_psnr if val_psnr == val_psnr else "-")
                if self.step % c.train.log_every == 0 or validated or stopping or self.step == c.train.steps:
                    now = time.time()
                    row = {k: v / count for k, v in sums.items()}
                    row.update(step=self.step, lr=terms["lr"], val_psnr=val_psnr if validated else "",
                               val_temporal=self.val_temporal if validated else "",
                               sec_per_step=(now - tick) / count, teacher_calls=p.teacher.calls)
                    if log is not None:
                        log.write(row)
                    sums, count, tick = {}, 0, now
                if self.step % c.train.checkpoint_every == 0 and self.step < c.train.steps:
                    self.save(CHECKPOINT_LAST, val_psnr)
                if stopping:
                    interrupted = stop.received or signal.SIGTERM
                    break
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            # finish off: rank 0 writes, the others wait so nobody exits before the files exist
            last, final = self.out / CHECKPOINT_LAST, self.out / CHECKPOINT_FINAL
            if self.step > start_step or not final.is_file():  # a resumed finished run rewrites nothing
                self.save(CHECKPOINT_LAST, val_psnr)
                if interrupted is None:
                    self.save(CHECKPOINT_FINAL, val_psnr, with_state=False)
            if interrupted is not None:
                final = None
            self.dist.barrier()
        del self.stream
        if log is not None:
            log.close()
        return self._summary(started, val_psnr, interrupted, final, last)


def train(config: DistillConfig, resume: bool = False, progress: bool = True,
          echo: Callable[[str], None] = print) -> dict:
    """Run (or resume) the distillation described by ``config``; returns the summary."""
    return Trainer(config, resume=resume, progress=progress, echo=echo).run()


# --------------------------------------------------------------------------- cache-teacher


def cache_teacher(config: DistillConfig, world_size: int = 1, progress: bool = True,
                  echo: Callable[[str], None] = print) -> dict:
    """Compute the teacher output of every crop a run with ``config`` (on ``world_size``
    processes) will draw, plus the validation crops, into the teacher cache."""
    device = pick_device(config.train.device)
    workers = data_workers(config, 1, device.type == "cuda")
    torch.set_num_threads(default_threads(config, 1, workers))
    p = prepare(config, device, echo)
    if not p.teacher.live:
        raise ConfigError("cache-teacher needs a teacher that runs here (restormer:, student:, module:), not %s"
                          % p.teacher.description)
    if p.cache is None:
        raise ConfigError("cache-teacher needs a cache folder: teacher.cache=DIR (or auto), not none")
    c = config
    per_process = total_samples(c)
    total = per_process * world_size
    echo("teacher %s -> %s | %d training crops (%d process(es) x %d) + %d validation crops | data: %s" % (
        p.teacher.description, p.cache.folder, total, world_size, per_process, len(p.val.items),
        D.describe_counts(p.counts)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total + len(p.val.items), desc="teacher outputs", unit="crop", dynamic_ncols=True, disable=None)
    hits = 0
    computed = 0
    # The val crops first (few), then every process's stream in turn.
    stride = student_config(c.student).stride
    val = D.validation_samples(p.val, c.data.val_crop, val_multiple(stride), c.train.seed, p.cache.get)
    hits += sum(1 for s in val if s["teacher"] is not None)
    route_targets(val, c.teacher.route)
    computed += fill_targets(p.teacher, p.cache, val, c.teacher.batch, device)
    if bar is not None:
        bar.update(len(val))
    for rank in range(world_size):
        stream = D.sample_stream(p.train, c.data.crop, c.train.seed, 0, per_process, rank, world_size,
                                 workers, p.cache.get, prefetch=4 * c.teacher.batch)
        chunk: List[dict] = []
        for sample in stream:
            chunk.append(sample)
            if len(chunk) >= 4 * c.teacher.batch:
                hits += sum(1 for s in chunk if s["teacher"] is not None)
                route_targets(chunk, c.teacher.route)
                computed += fill_targets(p.teacher, p.cache, chunk, c.teacher.batch, device)
                if bar is not None:
                    bar.update(len(chunk))
                chunk = []
        hits += sum(1 for s in chunk if s["teacher"] is not None)
        route_targets(chunk, c.teacher.route)
        computed += fill_targets(p.teacher, p.cache, chunk, c.teacher.batch, device)
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return {"folder": str(p.cache.folder), "teacher_sha256": p.teacher.sha256, "computed": computed,
            "cached": hits, "total": total + len(val), "teacher_calls": p.teacher.calls}

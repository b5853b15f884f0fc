"""The configuration of a distillation run: defaults, a YAML/TOML file, CLI overrides, validation.

One nested dataclass per section; :func:`load_config` merges, in order, the defaults, a config file,
the CLI's shortcut options and ``--set section.key=value`` overrides, and checks every value. The
resolved config is saved as ``config.yaml`` beside the checkpoints, and ``--resume`` reads it back.
torch-free.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgerestore.errors import ConfigError, InputNotFoundError


@dataclass
class StudentSection:
    preset: str = "nano"
    """A student preset (pico, nano, nano-fast, small, large) whose architecture to train."""
    config: Dict[str, Any] = field(default_factory=dict)
    """StudentConfig fields that override the preset's (e.g. ``{width: 16}``): a custom architecture."""
    init: Optional[str] = None
    """A student checkpoint to start from (fine-tuning) instead of the identity initialisation."""


@dataclass
class TeacherSection:
    spec: str = "none"
    """``none`` | ``restormer:WEIGHTS.pth`` | ``student:CHECKPOINT.pt`` | ``module:pkg.mod:factory`` |
    ``folder:DIR`` (precomputed outputs: a teacher cache made by ``cache-teacher``, or images named
    like the inputs of a paired dataset)."""
    kwargs: Dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of a ``module:`` factory."""
    weights: Optional[str] = None
    """A state dict to load into a ``module:`` teacher (strict)."""
    tile: int = 0
    """Run the teacher in tiles of this size (0 = whole crops); for teachers that run out of memory."""
    overlap: int = 32
    """Overlap of the tiles, blended with a feathered window."""
    batch: int = 4
    """Crops per teacher call."""
    cache: str = "auto"
    """Where teacher outputs are kept: ``auto`` ($EDGERESTORE_CACHE/teacher), a folder, or ``none``."""
    route: List[str] = field(default_factory=list)
    """Which crops the teacher's output is the target of: names of ``data.degradation``'s mix
    components and ``pairs`` (real pairs), e.g. ``[noise, pairs]`` for a denoiser teacher. The other
    crops take the ground truth as that target, and the teacher never runs on them. Empty = every crop."""


@dataclass
class DataSection:
    train: List[str] = field(default_factory=list)
    """Folders of clean images, paired folders (``…/blur/x.png`` <-> ``…/sharp/x.png``), video files."""
    weights: List[float] = field(default_factory=list)
    """Sampling weight of each ``train`` entry, in order (empty = every image equally likely, so the
    biggest folder dominates): ``[1, 1, 0.5]`` draws a third of the crops from each of the first two
    entries and a sixth from the third, whatever their sizes."""
    exclude: List[str] = field(default_factory=list)
    """Glob patterns of relative file names left out of ``train`` (e.g. held-out scenes:
    ``["*_chair_*"]``)."""
    memory_mb: int = 4096
    """Decoded training images kept in memory (MB); past it, images are read from disk when a crop
    is cut (0 = no limit). Video frames always stay in memory."""
    val: List[str] = field(default_factory=list)
    """Held-out data for validation; empty = hold out ``val_count`` images of ``train`` (seeded)."""
    val_count: int = 8
    """Images (or videos) held out of ``train`` when ``val`` is empty."""
    val_crop: int = 256
    """Validation scores the centre ``val_crop`` square of each held-out image (0 = whole image)."""
    degradation: Any = "mild"
    """A preset of distill/degrade.py (mild, noise, blur, strong, none) or a dict of its fields
    (``{base: mild, gaussian_sigma: [2, 8]}``); paired data is used as it is."""
    val_degradation: Any = None
    """The degradation of the validation crops (same forms as ``degradation``); None = ``degradation``,
    or for a mix its heaviest component (a mix's clean crops would swamp the mean PSNR)."""
    patch: int = 128
    """Training patch size (pixels)."""
    crop: int = 192
    """Size of the degraded crops kept in memory (the teacher runs on these; patches are cut from them)."""
    pool: int = 256
    """Degraded crops kept in memory."""
    refresh: int = 2
    """Fresh crops that replace the oldest ones after every step (0 = a fixed pool). Each costs
    15-30 ms of a worker's CPU (mostly the Poisson noise), so on 2 cores more than ~2 per step makes
    the data, not the model, the bottleneck of small students."""
    augment: bool = True
    """Random flips and 90-degree rotations of the patches."""
    codec_qp: str = "crf"
    """What a ``codec_input`` student is told of an H.264 crop: ``crf``, its encoder's CRF (the first
    prototypes), or ``decoded``, the QP its decoder reads back, as the runtime would
    (:func:`edgerestore.codecinput.frame_h264_qp`)."""
    align: int = 1
    """Patches start at multiples of this many pixels of their crop, whose compression grid starts
    at its corner (8: on the JPEG / H.264 block grid, as in a decoded frame; 1 = anywhere)."""
    workers: int = -1
    """Processes that degrade crops in the background (0 = in the training process; -1 = auto:
    a quarter of the cores per training process, at least 1, up to 8 with a GPU)."""
    video_stride: int = 2
    """Use every n-th frame of videos."""
    video_max_frames: int = 300
    """At most this many frames per video are kept in memory."""
    sequence: int = 0
    """Frames per training sample (0 = single crops). Temporal students need clips (>= 2); a
    frame-by-frame student trained on clips sees the same data and losses (fair comparisons)."""
    clips: List[str] = field(default_factory=list)
    """Real clips for sequence training: videos and folders of frames (every frame, name order).
    Always trained on; validation holds out images/videos of ``train`` (or uses ``val``)."""
    clip_share: float = 0.5
    """Share of training clips cut from real clips (``clips`` and videos) when there are any; the
    rest are filmed from still images by a moving camera (``motion``)."""
    motion: Dict[str, Any] = field(default_factory=dict)
    """Camera and object motion of clips made from stills: fields of CameraMotion in
    distill/sequences.py (``{static_prob: 0.3, speed: [0, 3], object_prob: 0.5}``)."""
    vary: float = 0.3
    """How far blur, noise and JPEG quality drift from frame to frame within a training clip
    (0 = the same parameters for the whole clip; degrade.frame_params)."""
    val_frames: int = 8
    """Frames of each validation clip (sequence runs)."""


@dataclass
class LossSection:
    pixel: str = "charbonnier"
    """charbonnier | l1: the per-pixel distance of the ``gt`` and ``teacher`` terms."""
    eps: float = 1e-3
    """Charbonnier's epsilon."""
    gt: float = 1.0
    """Weight of the distance to the ground truth."""
    teacher: float = 1.0
    """Weight of the distance to the teacher's output (ignored without a teacher)."""
    ms_ssim: float = 0.0
    """Weight of 1 - MS-SSIM (to ``target``)."""
    freq: float = 0.0
    """Weight of the L1 distance of the 2-D Fourier transforms (to ``target``)."""
    feature: float = 0.0
    """Weight of feature distillation (student features -> 1x1 adapter -> teacher features)."""
    target: str = "gt"
    """What ``ms_ssim`` and ``freq`` compare with: gt | teacher."""
    temporal: float = 0.0
    """Weight of the temporal term (clips only): the change of the output from frame to frame must
    match the ground truth's, ``d((out_t - out_t-1), (gt_t - gt_t-1))`` with the ``pixel`` distance."""
    steady: float = 0.0
    """Weight of the steadiness term (clips only): each output frame's distance to the previous
    output moved onto it by the clips' optical flow, ``d(out_t, moved(out_t-1))``, towards zero.
    What the flicker metric measures; it trades PSNR (detail that moves) for a steadier picture."""
    harm: float = 0.0
    """Weight of the do-no-harm term: per crop, the dB of PSNR the output loses against its own
    degraded input (0 where it gains), averaged over the batch. It weighs clean and compression-only
    crops, whose errors are small, as much as the rest."""
    harm_margin: float = 0.0
    """dB the do-no-harm term asks for beyond "no worse": a crop counts as harmed below this gain."""


@dataclass
class OptimSection:
    lr: float = 2e-3
    """Peak learning rate of AdamW."""
    min_lr: float = 1e-5
    """Learning rate at the end of the cosine."""
    weight_decay: float = 1e-4
    betas: Tuple[float, float] = (0.9, 0.99)
    warmup: int = 200
    """Steps of linear warm-up from 0."""
    schedule: str = "cosine"
    """cosine (warm-up, then cosine down to min_lr) | constant (warm-up, then lr)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm (0 = off)."""
    ema: float = 0.999
    """Decay of the exponential moving average of the weights (0 = off); checkpoints hold the EMA."""


@dataclass
class TrainSection:
    steps: int = 10000
    batch: int = 16
    """Patches per step per process."""
    seed: int = 0
    val_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 20
    device: str = "auto"
    """auto (CUDA when available) | cpu | cuda | cuda:N."""
    threads: int = 0
    """torch threads per process (0 = the cores divided by the processes, minus data.workers)."""


SECTIONS = {
    "student": StudentSection,
    "teacher": TeacherSection,
    "data": DataSection,
    "loss": LossSection,
    "optim": OptimSection,
    "train": TrainSection,
}

# Keys --resume lets one change: they do not change what is learnt or the schedule.
RESUMABLE_CHANGES = {
    "data.workers", "train.device", "train.threads", "train.val_every", "train.checkpoint_every",
    "train.log_every", "data.memory_mb", "teacher.cache", "teacher.batch", "teacher.tile", "teacher.overlap", "out",
}


@dataclass
class DistillConfig:
    student: StudentSection = field(default_factory=StudentSection)
    teacher: TeacherSection = field(default_factory=TeacherSection)
    data: DataSection = field(default_factory=DataSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    out: str = "runs/distill"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["optim"]["betas"] = list(self.optim.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DistillConfig:
        data = dict(data or {})
        unknown = sorted(set(data) - set(SECTIONS) - {"out"})
        if unknown:
            raise ConfigError("unknown config section(s) %s; valid: %s" % (", ".join(unknown), ", ".join(list(SECTIONS) + ["out"])))
        kwargs = {}
        for name, section_cls in SECTIONS.items():
            kwargs[name] = _section(name, section_cls, data.get(name) or {})
        config = cls(out=str(data.get("out", cls.out)), **kwargs)
        validate(config)
        return config

    def flat(self) -> Dict[str, Any]:
        """``{"section.key": value}`` of every setting (for comparisons and messages)."""
        out = {"out": self.out}
        for name in SECTIONS:
            for key, value in asdict(getattr(self, name)).items():
                out["%s.%s" % (name, key)] = list(value) if isinstance(value, tuple) else value
        return out


def _section(name: str, section_cls, values: dict):
    if not isinstance(values, dict):
        raise ConfigError("config section %r must be a mapping, not %r" % (name, values))
    known = {f.name: f for f in fields(section_cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError("unknown key(s) %s in section %r; valid: %s" % (
            ", ".join(unknown), name, ", ".join(known)))
    defaults = section_cls()
    converted = {}
    for key, value in values.items():
        converted[key] = _coerce("%s.%s" % (name, key), value, getattr(defaults, key))
    return section_cls(**converted)


def _coerce(key: str, value, default):
    """Give ``value`` the type of the default (YAML/TOML/CLI strings -> numbers...)."""
    if value is None or default is None:
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "1", "on"):
                    return True
                if value.lower() in ("false", "no", "0", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(float(v) for v in value)
        if isinstance(default, list):
            values = [value] if isinstance(value, (str, int, float)) else value
            if key in _FLOAT_LISTS:
                return [float(v) for v in values]
            return [str(v) for v in values]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        if isinstance(default, str) and not isinstance(value, (str, dict)):
            return str(value)
    except (TypeError, ValueError):
        raise ConfigError("%s=%r is not a valid %s" % (key, value, type(default).__name__))
    return value


_FLOAT_LISTS = {"data.weights"}

_CHOICES = {
    "loss.pixel": ("charbonnier", "l1"),
    "loss.target": ("gt", "teacher"),
    "optim.schedule": ("cosine", "constant"),
    "data.codec_qp": ("crf", "decoded"),
}


def validate(config: DistillConfig) -> None:
    """Check ranges and choices; a bad value raises :class:`ConfigError` naming the key."""
    flat = config.flat()
    for key, choices in _CHOICES.items():
        if flat[key] not in choices:
            raise ConfigError("%s=%r; choose one of: %s" % (key, flat[key], ", ".join(choices)))
    if config.data.memory_mb < 0:
        raise ConfigError("data.memory_mb must be >= 0 (0 = no limit), got %r" % config.data.memory_mb)
    positive = ["data.patch", "data.crop", "data.pool", "train.steps", "train.batch", "train.val_every",
                "train.checkpoint_every", "train.log_every", "teacher.batch", "data.video_stride",
                "data.video_max_frames"]
    for key in positive:
        if flat[key] <= 0:
            raise ConfigError("%s must be > 0, got %r" % (key, flat[key]))
    if config.data.workers < -1:
        raise ConfigError("data.workers must be >= 0 (or -1 = auto), got %r" % config.data.workers)
    non_negative = ["data.refresh", "data.val_count", "data.val_crop", "loss.gt", "loss.teacher",
                    "loss.ms_ssim", "loss.freq", "loss.feature", "loss.temporal", "loss.steady", "loss.harm", "loss.harm_margin",
                    "data.sequence",
                    "data.clip_share", "data.vary", "optim.warmup", "optim.grad_clip",
                    "optim.weight_decay", "optim.min_lr", "teacher.tile", "teacher.overlap", "train.threads"]
    for key in non_negative:
        if flat[key] < 0:
            raise ConfigError("%s must be >= 0, got %r" % (key, flat[key]))
    if config.data.weights:
        if len(config.data.weights) != len(config.data.train):
            raise ConfigError("data.weights has %d value(s) for %d data.train entries; give one weight per entry, "
                              "in order" % (len(config.data.weights), len(config.data.train)))
        if min(config.data.weights) < 0 or max(config.data.weights) <= 0:
            raise ConfigError("data.weights must be >= 0 with at least one > 0, got %r" % (config.data.weights,))
    if not 0.0 <= config.optim.ema < 1.0:
        raise ConfigError("optim.ema must be in [0, 1), got %r" % config.optim.ema)
    if config.optim.lr <= 0:
        raise ConfigError("optim.lr must be > 0, got %r" % config.optim.lr)
    if config.data.align < 1 or config.data.patch % config.data.align or config.data.crop % config.data.align:
        raise ConfigError("data.align=%r must be >= 1 and divide data.patch (%d) and data.crop (%d), e.g. 8"
                          % (config.data.align, config.data.patch, config.data.crop))
    if config.data.crop < config.data.patch:
        raise ConfigError("data.crop (%d) must be >= data.patch (%d)" % (config.data.crop, config.data.patch))
    if config.data.pool < config.data.refresh:
        raise ConfigError("data.refresh (%d) must be <= data.pool (%d)" % (config.data.refresh, config.data.pool))
    if config.data.sequence == 1:
        raise ConfigError("data.sequence=1 is a clip of one frame; use 0 (single crops) or >= 2")
    for term in ("temporal", "steady"):
        if getattr(config.loss, term) > 0 and config.data.sequence < 2:
            raise ConfigError("loss.%s needs clips: set data.sequence >= 2 (e.g. 5)" % term)
    if config.data.sequence and config.loss.feature > 0:
        raise ConfigError("feature distillation (loss.feature) is not supported with clips (data.sequence); set it to 0")
    if config.data.clip_share > 1:
        raise ConfigError("data.clip_share is a share in [0, 1], got %r" % config.data.clip_share)
    if config.data.val_frames < 2:
        raise ConfigError("data.val_frames must be >= 2, got %r" % config.data.val_frames)
    weights = [config.loss.gt, config.loss.teacher, config.loss.ms_ssim, config.loss.freq, config.loss.feature]
    if sum(weights) <= 0:
        raise ConfigError("every loss weight is 0; set loss.gt and/or loss.teacher > 0")


# --------------------------------------------------------------------------- files and overrides


def read_config_file(path) -> dict:
    """A YAML (``.yaml``/``.yml``) or TOML (``.toml``) file as a dict."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("config file %s does not exist" % path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ConfigError("cannot parse %s: %s" % (path, str(exc).splitlines()[0])) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("%s must hold a mapping of sections (student, teacher, data, ...)" % path)
    return data


def parse_override(text: str) -> Tuple[str, Any]:
    """``"optim.lr=1e-3"`` -> ``("optim.lr", 0.001)`` (values are parsed as YAML)."""
    import yaml

    if "=" not in text:
        raise ConfigError("override %r must look like section.key=value (e.g. optim.lr=1e-3)" % text)
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except Exception:
        value = raw
    return key.strip(), value


def set_key(data: dict, key: str, value) -> None:
    """Set ``data[section][key] = value`` for a dotted ``key`` (``out`` has no section)."""
    if key == "out":
        data["out"] = value
        return
    if "." not in key:
        raise ConfigError("override key %r must be section.key (sections: %s)" % (key, ", ".join(SECTIONS)))
    section, name = key.split(".", 1)
    if section not in SECTIONS:
        raise ConfigError("unknown config section %r; valid: %s" % (section, ", ".join(list(SECTIONS) + ["out"])))
    data.setdefault(section, {})
    if not isinstance(data[section], dict):
        raise ConfigError("config section %r must be a mapping" % section)
    data[section][name] = value


def load_config(path=None, options: Optional[Dict[str, Any]] = None, overrides: Optional[List[str]] = None,
                base: Optional[dict] = None) -> DistillConfig:
    """Defaults < ``base`` (a saved config) < the file at ``path`` < ``options`` ({"a.b": v}) < ``overrides``."""
    data = copy.deepcopy(base) if base else {}
    if path:
        file_data = read_config_file(path)
        for section, values in file_data.items():
            if isinstance(values, dict) and isinstance(data.get(section), dict):
                data[section].update(values)
            else:
                data[section] = values
    for key, value in (options or {}).items():
        if value is not None:
            set_key(data, key, value)
    for text in overrides or []:
        set_key(data, *parse_override(text))
    return DistillConfig.from_dict(data)


def save_config(config: DistillConfig, path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    import os
    import tempfile

    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# resolved configuration of this run (edgerestore distill); --resume reads it back\n"
    text += yaml.safe_dump(config.to_dict(), sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def load_resume_config(config_path, options: dict, overrides) -> DistillConfig:
    """The config of ``--resume``: the run's saved ``config.yaml`` under what was given; one error
    when there is nothing to resume or when a setting that changes the training differs."""
    out = load_config(config_path, options, overrides).out
    saved_path = Path(out) / "config.yaml"
    if not saved_path.is_file():
        raise InputNotFoundError("nothing to resume in %s (no config.yaml); check --out" % out)
    saved_data = read_config_file(saved_path)
    config = load_config(config_path, options, overrides, base=saved_data)
    differences = resume_differences(DistillConfig.from_dict(saved_data), config)
    if differences:
        raise ConfigError("--resume continues the run's own config, but these differ: %s; start a new run "
                          "(another --out) to change them" % "; ".join(differences))
    return config


def resume_differences(saved: DistillConfig, given: DistillConfig) -> List[str]:
    """Settings that differ between a run's saved config and the one given with ``--resume``,
    except those that do not change the training (workers, device, intervals...)."""
    a, b = saved.flat(), given.flat()
    return ["%s (run: %r, given: %r)" % (k, a[k], b[k]) for k in sorted(a)
            if k not in RESUMABLE_CHANGES and a[k] != b[k]]

"""Teachers (what the student learns to imitate) and the on-disk cache of their outputs.

A teacher is named by a spec (``teacher.spec`` / ``--teacher``), one row of :data:`TEACHERS`:

* ``none`` -- ground truth only;
* ``restormer:WEIGHTS.pth`` -- Restormer (edgerestore/models/restormer.py) with released weights;
  the architecture is read off the checkpoint, so the deblurring, deraining, defocus and
  denoising checkpoints all work;
* ``student:CHECKPOINT.pt`` -- an edgerestore student, e.g. a ``large`` model trained here;
* ``module:package.module:factory`` -- any torch model: ``factory(**teacher.kwargs)`` must return
  an ``nn.Module`` mapping float RGB NCHW in [0, 1] to the same (``teacher.weights`` is loaded
  into it with ``strict=True``);
* ``folder:DIR`` -- precomputed outputs: a teacher cache made by ``edgerestore distill
  cache-teacher`` (on a GPU box, copied here), or images named like the blurred images of a paired
  dataset.

**The cache.** The output for each training crop -- identified by the image's content, the crop box,
the degradation and its seed (:meth:`Renderer.key`) -- is computed once and stored under
``<cache>/<teacher sha256[:16]>/<key[:2]>/<key>.npz`` together with the degraded crop the teacher
saw. The teacher's identity is the sha256 of its weights file (of its state dict for ``module:``
teachers), so new weights never reuse old outputs. A second run with the same data and seed calls
the teacher zero times, and trains on exactly the inputs the teacher saw.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgerestore.errors import CheckpointError, ConfigError, InputNotFoundError
from edgerestore.models.checkpoint import file_sha256

CACHE_MANIFEST = "teacher.json"


# --------------------------------------------------------------------------- the cache


class TeacherCache:
    """Teacher outputs on disk, one ``.npz`` per crop (``degraded`` and ``teacher``, uint8 RGB; 8 bits
    are what the ground truth and a deployed student have, and half the size of float16).

    Picklable (DataLoader workers read it); writes are atomic (temporary file + rename), so
    processes sharing a cache never read half a file.
    """

    def __init__(self, folder, sha256: str):
        self.folder = Path(folder)
        self.sha256 = sha256

    @classmethod
    def under(cls, root, sha256: str) -> TeacherCache:
        """The cache of the teacher with ``sha256`` inside a cache root."""
        return cls(Path(root) / sha256[:16], sha256)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / (key + ".npz")

    def get(self, key: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(str(path)) as data:
                return np.ascontiguousarray(data["degraded"]), np.ascontiguousarray(data["teacher"])
        except Exception:  # a damaged entry is recomputed, not fatal
            return None

    def put(self, key: str, degraded: np.ndarray, teacher: np.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=key, suffix=".tmp", dir=str(path.parent))
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, degraded=degraded, teacher=teacher)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def write_manifest(self, description: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / CACHE_MANIFEST
        if not manifest.exists():
            tmp = manifest.with_suffix(".json.tmp")
            tmp.write_text(json.dumps({"format": "edgerestore-teacher-cache", "version": 1,
                                       "teacher_sha256": self.sha256, "teacher": description,
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
            os.replace(tmp, manifest)

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("??/*.npz"))


# --------------------------------------------------------------------------- teachers


class Teacher:
    """Base class. ``sha256`` identifies the weights (``None``: nothing to cache); ``calls`` counts
    the crops the teacher actually computed (cache hits do not count)."""

    kind = ""
    live = True
    """Whether :meth:`outputs` can compute (a folder of precomputed outputs cannot)."""

    def __init__(self, argument: str = ""):
        self.argument = argument
        self.sha256: Optional[str] = None
        self.calls = 0

    @property
    def description(self) -> str:
        return "%s:%s" % (self.kind, self.argument) if self.argument else self.kind

    def attach(self, items) -> None:
        """Give items their precomputed outputs (only ``folder:`` teachers of image outputs do)."""

    def outputs(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def outputs_and_features(self, batch: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise ConfigError("teacher %s has no features to distil; set loss.feature=0" % self.description)


class NoTeacher(Teacher):
    kind = "none"
    live = False


class TorchTeacher(Teacher):
    """A torch model run without gradients, padded (reflect) to its multiple, optionally tiled."""

    multiple = 8

    def __init__(self, argument: str, model: nn.Module, sha256: str, device, tile: int = 0, overlap: int = 32):
        super().__init__(argument)
        self.model = model.to(device).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.sha256 = sha256
        self.device = device
        self.tile = tile or None
        self.overlap = overlap

    @torch.no_grad()
    def outputs(self, batch: torch.Tensor) -> torch.Tensor:
        from edgerestore.models.restormer import restore_image

        self.calls += batch.shape[0]
        out = restore_image(self.model, batch.to(self.device), tile=self.tile, overlap=self.overlap,
                            multiple=self.multiple)
        return out.clamp_(0.0, 1.0)

    @torch.no_grad()
    def outputs_and_features(self, batch: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        from edgerestore.models.restormer import pad_to_multiple

        padded, (h, w) = pad_to_multiple(batch.to(self.device), self.multiple)
        self.calls += batch.shape[0]
        out, features = self._forward_features(padded)
        return out[..., :h, :w].clamp(0.0, 1.0), features

    def _forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        forward_features = getattr(self.model, "forward_features", None)
        if forward_features is None:
            return super().outputs_and_features(x)
        return forward_features(x)


class RestormerTeacher(TorchTeacher):
    kind = "restormer"

    @classmethod
    def create(cls, argument: str, section, device) -> RestormerTeacher:
        from edgerestore.models.restormer import load_restormer

        if not argument:
            raise ConfigError("the restormer teacher needs its weights: --teacher restormer:motion_deblurring.pth "
                              "(the released checkpoints of swz30/Restormer)")
        model = load_restormer(argument)
        if model.config.inp_channels != 3 or model.config.out_channels != 3 or model.config.dual_pixel_task:
            raise ConfigError("%s maps %d to %d channels%s; a teacher must restore RGB frames (use an RGB "
                              "checkpoint such as motion_deblurring.pth)" % (
                                  argument, model.config.inp_channels, model.config.out_channels,
                                  " (dual-pixel)" if model.config.dual_pixel_task else ""))
        return cls(argument, model, file_sha256(argument), device, section.tile, section.overlap)


class StudentTeacher(TorchTeacher):
    kind = "student"

    @classmethod
    def create(cls, argument: str, section, device) -> StudentTeacher:
        from edgerestore.models.checkpoint import load_student

        if not argument:
            raise ConfigError("the student teacher needs a checkpoint: --teacher student:runs/large/best.pt")
        model, _ = load_student(argument)
        if model.config.temporal:
            raise ConfigError("%s is a temporal student; a teacher must restore single frames" % argument)
        teacher = cls(argument, model, file_sha256(argument), device, section.tile, section.overlap)
        teacher.multiple = max(8, model.stride)
        return teacher

    def _forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x)
        return self.model(x), features


def _state_sha256(model: nn.Module, extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ModuleTeacher(TorchTeacher):
    kind = "module"

    @classmethod
    def create(cls, argument: str, section, device) -> ModuleTeacher:
        if argument.count(":") != 1:
            raise ConfigError("a module teacher is module:package.module:factory, got module:%s" % argument)
        module_name, attr = argument.split(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError("cannot import teacher factory %s (%s)" % (argument, exc)) from exc
        try:
            model = factory(**section.kwargs)
        except TypeError as exc:
            raise ConfigError("teacher factory %s(**teacher.kwargs) failed: %s" % (argument, exc)) from exc
        if not isinstance(model, nn.Module):
            raise ConfigError("teacher factory %s returned a %s, not a torch nn.Module" % (argument, type(model).__name__))
        if section.weights:
            path = Path(section.weights)
            if not path.is_file():
                raise InputNotFoundError("teacher weights %s do not exist" % path)
            try:
                state = torch.load(str(path), map_location="cpu", weights_only=True)
                from edgerestore.models.restormer import unwrap_state_dict

                model.load_state_dict(unwrap_state_dict(state), strict=True)
            except RuntimeError as exc:
                raise CheckpointError("%s does not fit %s: %s" % (path, argument, str(exc).splitlines()[0])) from exc
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointError("cannot read teacher weights %s (%s) — is the file complete?" % (path, exc)) from exc
        sha = _state_sha256(model, json.dumps([argument, section.kwargs], sort_keys=True, default=str))
        return cls(argument, model, sha, device, section.tile, section.overlap)


class FolderTeacher(Teacher):
    """Precomputed outputs: a teacher cache folder (with ``teacher.json``) or restored images."""

    kind = "folder"
    live = False

    @classmethod
    def create(cls, argument: str, section, device) -> FolderTeacher:
        folder = Path(argument)
        if not argument or not folder.is_dir():
            raise InputNotFoundError("teacher output folder %r does not exist" % argument)
        teacher = cls(argument)
        teacher.folder = folder
        manifests = [folder / CACHE_MANIFEST] if (folder / CACHE_MANIFEST).is_file() else sorted(folder.glob("*/" + CACHE_MANIFEST))
        if len(manifests) > 1:
            raise ConfigError("%s holds the caches of %d teachers; pass one of its sub-folders: %s" % (
                folder, len(manifests), ", ".join(str(m.parent) for m in manifests)))
        teacher.cache_folder = manifests[0].parent if manifests else None
        if teacher.cache_folder is not None:
            data = json.loads(manifests[0].read_text())
            teacher.sha256 = data["teacher_sha256"]
        return teacher

    def attach(self, items) -> None:
        if self.cache_folder is not None:
            return
        from edgerestore.distill.data import IMAGE_SUFFIXES, read_image

        for item in items:
            if not item.paired:
                raise ConfigError(
                    "teacher folder %s holds images, which only fit a paired dataset; for images degraded on "
                    "the fly precompute a cache with `edgerestore distill cache-teacher` and pass its folder"
                    % self.folder)
            candidates = [self.folder / item.name] + [self.folder / (str(Path(item.name).with_suffix(s)))
                                                      for s in IMAGE_SUFFIXES]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise InputNotFoundError("teacher folder %s has no output for %s" % (self.folder, item.name))
            output = read_image(found)
            if output.shape != item.clean.shape:
                raise ConfigError("teacher output %s is %s, its input %s is %s" % (
                    found, output.shape[:2], item.name, item.clean.shape[:2]))
            item.teacher = output

    def outputs(self, batch: torch.Tensor) -> torch.Tensor:
        raise ConfigError(
            "a crop is missing from the precomputed teacher outputs in %s: run `edgerestore distill cache-teacher` "
            "with the same config (data, seed, crop, pool, refresh, steps, degradation, processes) as training"
            % self.folder)


TEACHERS = {
    "none": NoTeacher,
    "restormer": RestormerTeacher,
    "student": StudentTeacher,
    "module": ModuleTeacher,
    "folder": FolderTeacher,
}


def parse_spec(spec: str) -> Tuple[str, str]:
    """``"restormer:w.pth"`` -> ``("restormer", "w.pth")``; unknown kinds list the valid ones."""
    kind, _, argument = (spec or "none").partition(":")
    if kind not in TEACHERS:
        from edgerestore.errors import UnknownNameError

        raise UnknownNameError("teacher", kind, TEACHERS)
    return kind, argument


def create_teacher(section, device="cpu") -> Teacher:
    """The teacher described by a :class:`~edgerestore.distill.config.TeacherSection`."""
    kind, argument = parse_spec(section.spec)
    cls = TEACHERS[kind]
    if cls is NoTeacher:
        return NoTeacher()
    return cls.create(argument, section, device)


def default_cache_root() -> Path:
    from edgerestore.models.resolve import cache_dir  # host side: the teacher cache

    return cache_dir() / "teacher"


def open_cache(teacher: Teacher, location: str) -> Optional[TeacherCache]:
    """The cache of ``teacher`` (``location``: ``auto``, ``none`` or a folder), or ``None``."""
    if isinstance(teacher, FolderTeacher) and teacher.cache_folder is not None:
        return TeacherCache(teacher.cache_folder, teacher.sha256)
    if teacher.sha256 is None or not teacher.live or str(location).lower() == "none":
        return None
    root = default_cache_root() if str(location).lower() == "auto" else Path(location)
    cache = TeacherCache.under(root, teacher.sha256)
    cache.write_manifest(teacher.description)
    return cache


# --------------------------------------------------------------------------- filling in targets


def to_batch(arrays: List[np.ndarray], device) -> torch.Tensor:
    """uint8 (0-255) or float (0-1) HWC arrays -> float NCHW in [0, 1] on ``device``."""
    stacked = torch.from_numpy(np.stack(arrays)).to(device)
    if stacked.dtype == torch.uint8:
        return stacked.permute(0, 3, 1, 2).float().div_(255.0)
    return stacked.permute(0, 3, 1, 2).float()


def route_targets(samples: List[dict], route) -> int:
    """``teacher.route``: a sample whose ``component`` is not routed to the teacher takes its ground
    truth as the teacher target (so :func:`fill_targets` skips it); returns how many did."""
    if not route:
        return 0
    count = 0
    for sample in samples:
        if sample.get("teacher") is None and sample.get("component") not in route:
            sample["teacher"] = sample["clean"]
            count += 1
    return count


def fill_targets(teacher: Teacher, cache: Optional[TeacherCache], samples: List[dict], batch: int,
                 device="cpu", on_batch: Optional[Callable[[int], None]] = None) -> int:
    """Compute the teacher output of every sample that has none (grouped by crop size, ``batch``
    crops per call) and store it in the cache; returns how many were computed. A clip
    (``[T, H, W, 3]``) gets the teacher's output of each of its frames."""
    missing: Dict[Tuple[int, int], List[Tuple[dict, Optional[int]]]] = {}
    pending: Dict[int, List[Optional[np.ndarray]]] = {}
    for sample in samples:
        if sample.get("teacher") is None:
            degraded = sample["degraded"]
            if degraded.ndim == 4:
                pending[id(sample)] = [None] * len(degraded)
                for t in range(len(degraded)):
                    missing.setdefault(degraded.shape[1:3], []).append((sample, t))
            else:
                missing.setdefault(degraded.shape[:2], []).append((sample, None))
    computed = 0
    for group in missing.values():
        for start in range(0, len(group), batch):
            chunk = group[start:start + batch]
            inputs = [s["degraded"] if t is None else s["degraded"][t] for s, t in chunk]
            outputs = teacher.outputs(to_batch(inputs, device))
            # rounded to 8 bits: the same targets whether computed now or read from the cache
            outputs = (outputs * 255.0).round_().clamp_(0, 255).permute(0, 2, 3, 1).to("cpu", torch.uint8).numpy()
            for (sample, t), output in zip(chunk, outputs):
                if t is None:
                    sample["teacher"] = np.ascontiguousarray(output)
                    if cache is not None:
                        cache.put(sample["key"], sample["degraded"], sample["teacher"])
                    computed += 1
                    continue
                frames = pending[id(sample)]
                frames[t] = np.ascontiguousarray(output)
                if all(f is not None for f in frames):
                    sample["teacher"] = np.stack(frames)
                    if cache is not None:
                        cache.put(sample["key"], sample["degraded"], sample["teacher"])
                    computed += 1
            if on_batch is not None:
                on_batch(len(chunk))
    return computed


def feature_channels(teacher: Teacher, device) -> int:
    """Channels of the teacher's features (probed on a small input)."""
    probe = torch.rand(1, 3, 32, 32, device=device)
    calls = teacher.calls
    _, features = teacher.outputs_and_features(probe)
    teacher.calls = calls  # a probe is not a teacher call on data
    return int(features.shape[1])


def match_features(teacher_features: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Teacher features resampled (area) to the student's feature resolution."""
    if tuple(teacher_features.shape[-2:]) == tuple(size):
        return teacher_features
    return F.adaptive_avg_pool2d(teacher_features, size)

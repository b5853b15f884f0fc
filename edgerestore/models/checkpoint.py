"""Student checkpoints: one ``.pt`` file with the architecture, the weights and where they came from.

Format (a plain dict, loadable with ``torch.load(path, weights_only=True)``)::

    {"format": "edgerestore-student", "version": 1, "preset": "nano" | None,
     "config": {...StudentConfig...}, "state_dict": {...}, "meta": {...}}

Files are written atomically (temporary file + rename), so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional, Tuple

import torch

from edgerestore.errors import CheckpointError, InputNotFoundError
from edgerestore.files import file_sha256  # noqa: F401 - re-exported: callers import it from here
from edgerestore.models.config import StudentConfig
from edgerestore.models.student import StudentNet

FORMAT = "edgerestore-student"
VERSION = 1


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; checkpoints are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_student(path, model: StudentNet, preset: Optional[str] = None, meta: Optional[dict] = None) -> Path:
    """Write ``model`` as a student checkpoint (atomically); returns the path."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(
        {"format": FORMAT, "version": VERSION, "preset": preset, "config": model.config.to_dict(),
         "state_dict": state, "meta": dict(meta or {})},
        path,
    )
    return Path(path)


def _read(path: Path) -> dict:
    if not path.exists():
        raise InputNotFoundError("checkpoint %s does not exist" % path)
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle of arbitrary objects, not a torch file...
        raise CheckpointError(
            "cannot read checkpoint %s (%s: %s) — is the file complete? re-copy or re-export it"
            % (path, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        ) from exc
    if not isinstance(data, dict):
        raise CheckpointError("checkpoint %s holds a %s, not a dict of weights" % (path, type(data).__name__))
    return data


def describe_state_mismatch(model: torch.nn.Module, state: dict) -> str:
    """Why ``state`` cannot load strictly into ``model`` (missing and unexpected keys, shapes), or ''."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    parts = []
    if missing:
        parts.append("missing %d key(s) e.g. %s" % (len(missing), missing[0]))
    if unexpected:
        parts.append("unexpected %d key(s) e.g. %s" % (len(unexpected), unexpected[0]))
    if wrong:
        k = wrong[0]
        parts.append("%d shape mismatch(es) e.g. %s has shape %s in the checkpoint, %s in the model"
                     % (len(wrong), k, got[k], expected[k]))
    return "; ".join(parts)


GROWABLE = ("filter_bases", "oriented_bank", "level_input", "codec_input", "blur_input")
"""Config flags whose modules start as the identity: a checkpoint without one can start a student
with it, or more filter bases than it has (``student.init``), which then begins as the checkpoint's network."""


def load_student(path, expect: Optional[StudentConfig] = None, grow: bool = False) -> Tuple[StudentNet, dict]:
    """Load a student checkpoint; returns ``(model in eval mode, checkpoint dict without weights)``.

    ``expect`` (e.g. a preset's config) makes a checkpoint of another architecture an error that
    names the first difference; with ``grow``, ``expect`` may add :data:`GROWABLE` modules, which
    start as the identity.
    """
    path = Path(path)
    data = _read(path)
    if data.get("format") != FORMAT:
        hint = " (a Restormer checkpoint? use it as a teacher: --teacher restormer)" if "params" in data else ""
        raise CheckpointError(
            "%s is not an edgerestore student checkpoint%s; keys: %s" % (path, hint, ", ".join(sorted(data)[:5]))
        )
    try:
        config = StudentConfig.from_dict(data["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError("%s has an unusable architecture config: %s" % (path, exc)) from exc
    added = {flag: getattr(expect, flag) for flag in GROWABLE
             if grow and expect is not None and getattr(expect, flag) > getattr(config, flag)}
    if added and replace(config, **added) == expect:
        config = expect
    if expect is not None and config != expect:
        diffs = ["%s=%r (expected %r)" % (k, v, getattr(expect, k)) for k, v in config.to_dict().items()
                 if getattr(expect, k) != v]
        raise CheckpointError("%s is a different architecture: %s" % (path, ", ".join(diffs)))
    model = StudentNet(config)
    state = data.get("state_dict", {})
    if added:  # grown (any other difference raised above): the new modules keep their identity start
        state = dict(model.state_dict(), **state)
    mismatch = describe_state_mismatch(model, state)
    if mismatch:
        raise CheckpointError("%s does not match its own architecture: %s" % (path, mismatch))
    model.load_state_dict(state)
    model.eval()
    info = {k: v for k, v in data.items() if k != "state_dict"}
    return model, info



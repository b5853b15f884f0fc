"""Turn what a user passes as ``--model`` into a file a backend can run.

* a preset name (``nano``) -> the shipped ``edgerestore/weights/nano.onnx`` (no torch needed);
* a ``.onnx`` file -> itself;
* a ``.pt`` student checkpoint -> exported once to ONNX in the cache folder
  (``$EDGERESTORE_CACHE`` or ``~/.cache/edgerestore``), keyed by the checkpoint's sha256 and
  the exporter's graph version;
  this needs torch (``pip install edgerestore[host]``);
* a bundle folder (``edgerestore export``) -> its files are checked against the manifest's
  sha256 and the artifact of the first backend that runs here (or of ``backend``) is returned.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgerestore.errors import CheckpointError, InputNotFoundError, UnknownNameError
from edgerestore.files import cache_root, file_sha256
from edgerestore.models.presets import PRESETS
from edgerestore.weights import shipped_path, shipped_presets

DEFAULT_MODEL = "nano"


def cache_dir() -> Path:
    """Where derived files (ONNX exports of checkpoints, engines) are kept."""
    return Path(cache_root())


def _onnx_from_checkpoint(path: Path) -> Path:
    try:
        from edgerestore.export.onnx import GRAPH_VERSION, export_onnx
        from edgerestore.models.checkpoint import load_student
    except ImportError as exc:
        raise CheckpointError(
            "running a .pt checkpoint needs torch (%s) — pip install 'edgerestore[host]', or export "
            "it to ONNX on a machine that has torch" % exc
        ) from exc
    # keyed by the graph's version too: a newer edgerestore re-exports instead of running an old graph
    target = cache_dir() / "onnx" / ("%s-graph%d.onnx" % (file_sha256(path)[:16], GRAPH_VERSION))
    if not target.exists():
        student, info = load_student(path)
        tmp = target.with_suffix(".onnx.part")
        export_onnx(student, tmp, metadata={"preset": info.get("preset") or "", "source": path.name})
        os.replace(tmp, target)
    return target


def resolve_model(spec: str | None, backend: str | None = None) -> Path:
    """The runnable model file for ``spec`` (see the module docstring); errors name the fix.

    ``backend`` only matters for bundles: it picks that backend's artifact.
    """
    spec = spec or DEFAULT_MODEL
    path = Path(spec)
    if path.is_dir():
        from edgerestore.runtime.bundle import is_bundle, load_bundle

        if not is_bundle(path):
            raise InputNotFoundError("%s is a folder without manifest.json, not a bundle — make one with "
                                     "`edgerestore export`" % path)
        bundle = load_bundle(path)
        return Path(bundle.path(bundle.select(backend)))
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise InputNotFoundError("model %s does not exist" % path)
        return path
    if path.suffix.lower() in (".pt", ".pth"):
        if not path.is_file():
            raise InputNotFoundError("checkpoint %s does not exist" % path)
        return _onnx_from_checkpoint(path)
    if os.sep in spec or path.exists():
        raise UnknownNameError("model file type", spec, [".onnx", ".pt"] + shipped_presets())
    if spec not in PRESETS:
        raise UnknownNameError("preset", spec, PRESETS)
    shipped = shipped_path(spec, ".onnx")
    if shipped is None:
        raise InputNotFoundError(
            "preset %s has no shipped weights (shipped: %s) — train one with `edgerestore distill "
            "--student %s` and pass the .pt" % (spec, ", ".join(shipped_presets()) or "none", spec)
        )
    return Path(shipped)

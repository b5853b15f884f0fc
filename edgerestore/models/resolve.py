"""``.pt`` student checkpoints as runnable files: exported once to ONNX in the cache folder
(``$EDGERESTORE_CACHE`` or ``~/.cache/edgerestore``), keyed by the checkpoint's sha256 and the
exporter's graph version. Host side (torch); board code reaches it through :mod:`edgerestore.host`,
and every other ``--model`` goes through :func:`edgerestore.runtime.artifacts.resolve`.
"""

import os
from pathlib import Path

from edgerestore.files import cache_root, file_sha256


def cache_dir():
    """Where derived files (ONNX exports of checkpoints, engines) are kept."""
    return Path(cache_root())


def onnx_from_checkpoint(path):
    """The ONNX export of ``path`` (made on first use; a newer graph version re-exports)."""
    from edgerestore.export.onnx import GRAPH_VERSION, export_onnx
    from edgerestore.models.checkpoint import load_student

    path = Path(path)
    target = cache_dir() / "onnx" / ("%s-graph%d.onnx" % (file_sha256(path)[:16], GRAPH_VERSION))
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        student, info = load_student(path)
        tmp = target.with_suffix(".onnx.part")
        export_onnx(student, tmp, metadata={"preset": info.get("preset") or "", "source": path.name})
        os.replace(str(tmp), str(target))
    return target

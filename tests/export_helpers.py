"""Shared helpers of the export / bundle / TFLite / TensorRT tests: tiny students and cached bundles.

Exports are cached per pytest process (keyed by target, size and formats) so that the test
modules that need the same bundle build it once.
"""

import atexit
import shutil
import tempfile
from pathlib import Path

_ROOT = []
_CACHE = {}
SIZE = (64, 96)  # multiples of the tiny student's stride; small enough for fast conversions


def workdir() -> Path:
    if not _ROOT:
        _ROOT.append(Path(tempfile.mkdtemp(prefix="edgerestore-export-tests-")))
        atexit.register(shutil.rmtree, str(_ROOT[0]), True)
    return _ROOT[0]


def tiny_student(seed=0, width=8, context=False, bases=0, level=False, codec=False):
    """A randomly initialised tiny student whose tail (and filter bases' weights, and with ``level``
    and ``codec`` its noise-level and codec biases) are not zero (so it is not the identity)."""
    import torch

    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(seed)
    config = StudentConfig(scale=4, width=width, blocks=1, context_width=8 if context else 0,
                           context_blocks=1 if context else 0, filter_bases=bases, level_input=level,
                           codec_input=codec)
    student = StudentNet(config)
    with torch.no_grad():
        student.tail.weight.normal_(0.0, 0.02)
        if level:
            student.level_head.normal_(0.0, 0.2)
        if codec:
            student.codec_head.normal_(0.0, 0.6)
        for weights in student.bases.weights if bases else ():
            weights.weight.normal_(0.0, 0.3)
    return student.eval()


def tiny_checkpoint(name="tiny", **kwargs) -> Path:
    from edgerestore.models.checkpoint import save_student

    key = ("ckpt", name, tuple(sorted(kwargs.items())))
    if key not in _CACHE:
        _CACHE[key] = save_student(workdir() / (name + ".pt"), tiny_student(**kwargs), preset=None)
    return _CACHE[key]


def exported(target, size=SIZE, formats=None, checkpoint=None):
    """The ExportResult of exporting the tiny checkpoint for ``target`` (cached)."""
    from edgerestore.export.bundle import export_bundle

    checkpoint = checkpoint or tiny_checkpoint()
    key = ("bundle", target, tuple(size), tuple(formats or ()), str(checkpoint))
    if key not in _CACHE:
        out = workdir() / ("bundle-%d" % len(_CACHE))
        _CACHE[key] = export_bundle(str(checkpoint), target, out, formats=list(formats) if formats else None,
                                    size=tuple(size))
    return _CACHE[key]


def copy_bundle(result, dst) -> Path:
    """A private copy of a cached bundle (for tests that tamper with it)."""
    shutil.copytree(str(result.out_dir), str(dst))
    return Path(dst)

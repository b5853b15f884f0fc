"""The one door from board code to host code (torch and the training stack).

Board commands import only torch-free, Python 3.6-clean modules. What needs torch (running a
``.pt`` checkpoint, counting a student config's MACs, a teacher row in ``bench``) is reached
through a function here: it imports the host module when called, and a missing library is one
line naming the extra to install. ``tests/test_board_closure.py`` walks the board commands'
imports and stops at this module. Python 3.6-safe.
"""

from edgerestore.errors import CheckpointError

HOST_EXTRA = "pip install 'edgerestore[host]'"


def _needs_torch(what, exc):
    return CheckpointError("%s needs torch (%s) — %s, or do it on a machine that has torch"
                           % (what, exc, HOST_EXTRA))


def checkpoint_to_onnx(path):
    """The ONNX export of the student checkpoint ``path``, made once and kept in the cache."""
    try:
        from edgerestore.models.resolve import onnx_from_checkpoint
    except ImportError as exc:
        raise _needs_torch("running a .pt checkpoint", exc)
    return onnx_from_checkpoint(path)


def student_macs(config):
    """MACs per output pixel of a student config (a dict); None without torch."""
    try:
        from edgerestore.models.config import StudentConfig
        from edgerestore.models.macs import macs_per_pixel
        from edgerestore.models.student import StudentNet
    except ImportError:
        return None
    cfg = StudentConfig.from_dict(config)
    size = cfg.stride * 16
    return macs_per_pixel(StudentNet(cfg), size, size)


def teacher_candidates(path, frames):
    """``bench --teacher``: the teacher's rows (a failed row that says why when torch is missing)."""
    from edgerestore.benchmarks.teacher import teacher_candidates as candidates

    return candidates(path, frames=frames)

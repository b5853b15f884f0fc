"""The teacher row of ``edgerestore bench`` (host only: PyTorch).

``--teacher`` takes an ONNX file (benched like any artifact), an edgerestore student checkpoint
(e.g. the ``large`` preset used as a teacher) or an official Restormer checkpoint (``{"params":
state_dict}``, loaded through :mod:`edgerestore.models.restormer` when this build has it). The
teacher is slow on a CPU, so its rows time only a few frames (``--teacher-frames``). Without torch
or without the weights, the row is a ``failed`` row that says why; the rest of the table completes.
"""

import os

from edgerestore.benchmarks.bench import Candidate, artifact_candidates
from edgerestore.runtime.backends.base import Backend

DEFAULT_TEACHER_FRAMES = 3
RESTORMER_STRIDE = 8  # three 2x down-samplings


class TorchModelBackend(Backend):
    """Any torch module with float RGB NCHW [0, 1] in and out, behind the Backend interface."""

    name = "torch"

    def __init__(self, module=None, stride=1, threads=None):
        super(TorchModelBackend, self).__init__(threads=threads)
        self.module = module
        self.stride = stride

    @classmethod
    def probe(cls):
        try:
            import torch  # noqa: F401
        except ImportError:
            return "torch is not installed — pip install 'edgerestore[host]'"
        return None

    def load(self, model_path=None, **options):
        import torch

        if self.threads:
            torch.set_num_threads(int(self.threads))
        self.threads = torch.get_num_threads()
        self.module = self.module.eval()
        self.model_path = model_path
        return self

    def _run(self, image):
        import torch

        with torch.no_grad():
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
            y = self.module(x)
            return (y[0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def load_teacher_module(path):
    """``(module, stride)`` from a student checkpoint or a Restormer checkpoint."""
    from edgerestore.errors import CheckpointError
    from edgerestore.models.checkpoint import load_student
    from edgerestore.models.restormer import load_restormer

    try:
        student, _ = load_student(path)
        return student, student.stride
    except CheckpointError:
        pass  # not a student: a Restormer checkpoint, or a clear error from its loader
    return load_restormer(str(path)), RESTORMER_STRIDE


def teacher_candidates(path, frames=DEFAULT_TEACHER_FRAMES, warmup=1):
    """Candidates for the teacher at ``path`` (see the module docstring)."""
    path = str(path)
    if path.lower().endswith(".onnx"):
        cands = artifact_candidates(path, kind="teacher", method="teacher")
    else:
        error = None
        if not os.path.isfile(path):
            error = "teacher weights %s do not exist" % path
        elif TorchModelBackend.probe():
            error = TorchModelBackend.probe()

        def factory(threads):
            module, stride = load_teacher_module(path)
            return TorchModelBackend(module, stride, threads=threads).load(path)

        cands = [Candidate("teacher", "teacher", "torch", "fp32", path, factory, group="teacher", error=error)]
    for cand in cands:
        cand.frames, cand.warmup, cand.group = frames, warmup, "teacher"
    return cands

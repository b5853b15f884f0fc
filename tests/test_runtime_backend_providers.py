"""ONNX Runtime execution providers: automatic choice, explicit choice, fallback."""

import numpy as np
import pytest

from edgerestore.errors import BackendUnavailableError, UnknownNameError
from edgerestore.runtime.backends.onnxruntime import OnnxRuntimeBackend, choose_providers, provider_options

GPU_BUILD = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_automatic_choice_prefers_tensorrt_then_cuda_then_cpu():
    assert choose_providers(None, GPU_BUILD) == (GPU_BUILD, False)
    assert choose_providers(None, ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(None, ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], False)


def test_explicit_choice_takes_short_names_and_keeps_the_cpu_last():
    assert choose_providers("cuda", GPU_BUILD) == (["CUDAExecutionProvider", "CPUExecutionProvider"], True)
    assert choose_providers(["TensorrtExecutionProvider", "cuda"], GPU_BUILD)[0] == GPU_BUILD
    with pytest.raises(BackendUnavailableError, match="no CUDAExecutionProvider.*onnxruntime-gpu"):
        choose_providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(UnknownNameError, match="cpu, cuda, tensorrt"):
        choose_providers("vulkan", GPU_BUILD)


def test_tensorrt_options_cache_fp16_engines(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGERESTORE_CACHE", str(tmp_path))
    options = provider_options("TensorrtExecutionProvider")
    assert options["trt_fp16_enable"] and options["trt_engine_cache_enable"]
    assert options["trt_engine_cache_path"] == str(tmp_path / "ort-tensorrt")
    assert provider_options("CPUExecutionProvider") == {}


def test_cpu_session_reports_its_providers(tiny_onnx):
    engine = OnnxRuntimeBackend(threads=1, providers="cpu").load(str(tiny_onnx))
    frame = np.random.RandomState(0).randint(0, 256, (30, 42, 3)).astype(np.uint8)  # padded to 32x44 inside
    assert engine.infer(frame).shape == frame.shape
    info = engine.info()
    assert info["providers"] == ["CPUExecutionProvider"] and info["fallback"] is None


def test_automatic_choice_falls_back_to_the_cpu(tiny_onnx, monkeypatch):
    """A GPU build whose CUDA libraries are missing: the session fails, the CPU takes over."""
    import onnxruntime as ort

    real_session = ort.InferenceSession
    monkeypatch.setattr(ort, "get_available_providers", lambda: GPU_BUILD)

    def session(path, opts, providers=None, provider_options=None):
        if providers[0] != "CPUExecutionProvider":
            raise RuntimeError("libcudart.so.12: cannot open shared object file")
        return real_session(path, opts, providers=providers)

    monkeypatch.setattr(ort, "InferenceSession", session)
    engine = OnnxRuntimeBackend(threads=1).load(str(tiny_onnx))
    assert "TensorrtExecutionProvider failed (libcudart.so.12" in engine.info()["fallback"]
    with pytest.raises(BackendUnavailableError, match="libcudart"):
        OnnxRuntimeBackend(threads=1, providers="cuda").load(str(tiny_onnx))


@pytest.mark.hardware
def test_cuda_provider_on_a_gpu(tiny_onnx):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has no CUDA provider (pip install onnxruntime-gpu on a machine with a GPU)")
    engine = OnnxRuntimeBackend(providers="cuda").load(str(tiny_onnx))
    frame = np.zeros((64, 64, 3), np.uint8)
    assert engine.infer(frame).shape == frame.shape
    assert engine.info()["providers"][0] == "CUDAExecutionProvider"

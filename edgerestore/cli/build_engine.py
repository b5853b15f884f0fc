"""``edgerestore build-engine BUNDLE``: build the TensorRT engine of a bundle on the board. Python 3.6-safe."""

import click


def _tensorrt_artifact(bundle, precision, echo):
    """``(artifact, precision)``: the bundle's TensorRT artifact for ``precision``.

    INT8 from a bundle without an INT8 artifact (a Jetson Nano's) builds that artifact's
    precision, with one warning that says why.
    """
    from edgerestore.errors import BundleError

    artifacts = [a for a in bundle.artifacts if a["backend"] == "tensorrt"]
    if not artifacts:
        raise BundleError("bundle %s (target %s) has no TensorRT artifact — export it with "
                          "`edgerestore export --target jetson-nano` (or jetson-orin...)" % (bundle.root, bundle.target))
    if not precision:
        return artifacts[0], artifacts[0]["precision"]
    matching = [a for a in artifacts if a["precision"] == precision]
    if matching:
        return matching[0], precision
    instead = artifacts[0]["precision"]
    profile = _profile(bundle.target)
    if precision == "int8" and profile is not None and profile.gpu and not profile.gpu_int8:
        echo("warning: %s has no INT8 (its GPU is sm_%s): building %s instead"
             % (bundle.target, profile.compute_capability.replace(".", ""), instead.upper()))
    else:
        echo("warning: bundle %s has no %s TensorRT artifact (re-export with --precision %s); building %s instead"
             % (bundle.root, precision.upper(), precision, instead.upper()))
    return artifacts[0], instead


def _profile(target):
    """The profile to plan for; for a family bundle (``jetson``) this board's, or its first member's."""
    from edgerestore.devices.detect import board_target
    from edgerestore.devices.profiles import profile_for

    return profile_for(target, board_target())


@click.command("build-engine")
@click.argument("bundle_path", metavar="BUNDLE")
@click.option("--precision", "-p", type=click.Choice(["fp16", "int8"]), default=None,
              help="Engine precision [default: the bundle's first TensorRT artifact]. INT8 on a GPU "
                   "without it (Jetson Nano, sm_53) builds FP16 with a warning.")
@click.option("--check", is_flag=True,
              help="Print what would be built (flags, cache paths, calibration) and exit; works without TensorRT.")
@click.option("--force", is_flag=True, help="Rebuild even when the engine cache has this engine.")
@click.option("--runs", type=int, default=20, show_default=True, help="Frames to time after building (0: none).")
def build_engine(bundle_path, precision, check, force, runs):
    """Build (or find in the engine cache) the TensorRT engine for BUNDLE on this board.

    The engine is cached under a key of model sha256 + TensorRT version + GPU + precision +
    input shape, next to a timing cache that makes rebuilds fast; `edgerestore restore` with the
    bundle uses it (and builds it itself when it is missing). Set EDGERESTORE_CACHE to move the
    cache.

    \b
    Examples:
      edgerestore build-engine bundles/jetson-nano-nano           # FP16 on a Nano
      edgerestore build-engine bundles/jetson-orin-small -p int8  # INT8 on Orin
      edgerestore build-engine bundles/jetson-orin-small --check  # what it would do, no GPU needed
    """
    import os
    import time

    from edgerestore.runtime.backends.tensorrt import TensorRTBackend
    from edgerestore.runtime.backends.tensorrt_engine import plan_build
    from edgerestore.runtime.bundle import load_bundle

    echo = click.echo
    bundle = load_bundle(bundle_path)
    artifact, precision = _tensorrt_artifact(bundle, precision, lambda m: echo(m, err=True))
    onnx_path = bundle.path(artifact)
    reason = TensorRTBackend.probe()
    if check:
        if reason is None:
            backend = TensorRTBackend(precision=precision)
            trt, cuda = backend._modules()
            plan = backend.plan_for(onnx_path, trt, cuda)
            echo("plan (TensorRT found):")
        else:
            profile = _profile(bundle.target)
            calibration = bundle.path(artifact["calibration_cache"]) if artifact.get("calibration_cache") else None
            plan = plan_build(onnx_path, artifact["io"]["input"]["shape"], precision,
                              profile.tensorrt if profile else "unknown", profile.gpu if profile else "unknown GPU",
                              profile.gpu_int8 if profile else False,
                              workspace_mb=profile.workspace_mb if profile else None, calibration_cache=calibration,
                              state=artifact["io"].get("state"))
            echo("plan for a %s (TensorRT is not usable here: %s):" % (bundle.target, reason))
        for warning in plan.warnings:
            echo("warning: " + warning, err=True)
        for line in plan.describe():
            echo("  " + line)
        echo("  cached     %s" % ("yes" if os.path.isfile(plan.engine_path) else "no (would build)"))
        return
    backend = TensorRTBackend(precision=precision, log=lambda m: echo(m, err=m.startswith("warning")))
    if reason is not None:
        from edgerestore.errors import BackendUnavailableError

        raise BackendUnavailableError("cannot build: %s" % reason)
    trt, cuda = backend._modules()
    plan = backend.plan_for(onnx_path, trt, cuda)
    if force and os.path.isfile(plan.engine_path):
        os.remove(plan.engine_path)
    start = time.time()
    backend.load(onnx_path)
    echo("engine %s ready (%.1fs): %s" % (backend.plan.precision.upper(), time.time() - start, backend.plan.engine_path))
    if runs > 0:
        height, width = backend.size
        backend.warmup(height, width)
        import numpy as np

        frame = np.zeros((height, width, 3), np.uint8)
        for _ in range(runs):
            backend.infer(frame)
        echo("%d frames of %dx%d: %.2f ms/frame (%.1f FPS, including the float adapter)"
             % (runs, width, height, backend.info()["mean_ms"], 1000.0 / backend.info()["mean_ms"]))

"""``edgerestore build-engine BUNDLE``: build the TensorRT engine of a bundle on the board. Python 3.6-safe."""

import click


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

    from edgerestore.runtime.backends.tensorrt import TensorRTBackend, bundle_artifact, offline_plan
    from edgerestore.runtime.bundle import load_bundle

    echo = click.echo
    bundle = load_bundle(bundle_path)
    artifact, precision = bundle_artifact(bundle, precision, lambda m: echo(m, err=True))
    onnx_path = bundle.path(artifact)
    reason = TensorRTBackend.probe()
    if check:
        if reason is None:
            plan = TensorRTBackend(precision=precision).plan(onnx_path)
            echo("plan (TensorRT found):")
        else:
            plan = offline_plan(bundle, artifact, precision)
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
    plan = backend.plan(onnx_path)
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

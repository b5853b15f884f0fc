"""The ``edgerestore`` command: a thin click group.

Each command lives in its own module here and is imported only when it runs (so that
``edgerestore run --help`` on a board never imports the training stack). Commands parse options,
call the library and print; :func:`main` turns any :class:`~edgerestore.errors.EdgeRestoreError`
into one line on stderr and a non-zero exit code (``--debug`` shows the traceback).
Python 3.6-safe.
"""

import importlib
import sys
import traceback

import click

from edgerestore.errors import EdgeRestoreError
from edgerestore.runtime.uri import redact

# command name -> "module:function", in the order `edgerestore --help` lists them.
COMMANDS = {
    "demo": "edgerestore.cli.demo:demo",
    "restore": "edgerestore.cli.restore:restore",
    "backends": "edgerestore.cli.backends:backends",
    "run": "edgerestore.cli.run:run",
    "preview": "edgerestore.cli.preview:preview",
    "distill": "edgerestore.cli.distill:distill",
    "export": "edgerestore.cli.export:export",
    "build-engine": "edgerestore.cli.build_engine:build_engine",
    "devices": "edgerestore.cli.devices:devices",
    "noise-level": "edgerestore.cli.noise_level:noise_level",
    "bench": "edgerestore.cli.bench:bench",
    "report": "edgerestore.cli.report:report",
    "mos": "edgerestore.cli.mos:mos",
    "config": "edgerestore.cli.config:config",
    "service": "edgerestore.cli.service:service",
}

# The commands a board runs (Jetson: Python 3.6, no torch). tests/test_board_closure.py walks what
# each one imports and holds it to that.
BOARD_COMMANDS = ("restore", "run", "preview", "bench", "backends", "devices", "build-engine", "report",
                  "config", "service", "noise-level")


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is used."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx, formatter):
        # Listing short help would import every command (and torch); name them instead.
        rows = [(name, _SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


_SUMMARIES = {
    "demo": "Degrade a shipped real clip, restore it, write a side-by-side video and contact sheet.",
    "restore": "Restore a video, an image or a folder of images with a student model.",
    "backends": "List inference backends and whether each can run here.",
    "run": "Run camera/file -> model -> display/file/webcam/http headless, printing JSON stats.",
    "preview": "Show raw | restored live (window, HDMI framebuffer or browser); keys q, s, b.",
    "distill": "Train a student from a teacher (Restormer, a model of ours, cached outputs) or ground truth.",
    "export": "Export a student for a board: a verified bundle (ONNX, INT8, TFLite, TensorRT).",
    "build-engine": "Build a bundle's TensorRT engine on the board (--check: show the plan).",
    "devices": "List the supported boards: hardware, software, backends, defaults.",
    "noise-level": "Measure a camera's sensor-noise level (for models with a noise-level input).",
    "bench": "Measure FPS, latency and quality of models, backends and baselines on this board (JSON).",
    "report": "Merge bench results of many boards into Markdown + a self-contained HTML page with plots.",
    "mos": "Blind rating kit: prepare an offline rating page, score the ratings (MOS with 95% CI).",
    "config": "Write (init --device rpi4) or check the service's TOML configuration file.",
    "service": "Install the systemd unit for `run --config FILE`; ask a running service its health.",
}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="edgerestore", message="%(prog)s %(version)s")
def cli(debug):
    """Sharpen and denoise live video on small boards.

    A tiny student network, distilled from a big restoration model, runs on Raspberry Pi,
    Jetson or a laptop through ONNX Runtime, TFLite or TensorRT.

    \b
    Start with:   edgerestore demo
    Your video:   edgerestore restore in.mp4 out.mp4
    """


EXTRAS = {
    "torch": "host", "onnx": "host", "onnxslim": "host", "yaml": "host", "skimage": "host",
    "onnxruntime": "cpu", "cv2": "cpu", "av": "cpu", "prometheus_client": "cpu",
    "matplotlib": "report",
    "litert_torch": "tflite", "ai_edge_litert": "tflite", "ai_edge_quantizer": "tflite", "torchao": "tflite",
}
"""Third-party modules -> the setup.py extra that installs them (for the one-line error)."""


def missing_extra(exc):
    """``(module, extra)`` when ``exc`` is a missing third-party module an extra installs, else None."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    return (name, EXTRAS[name]) if name in EXTRAS else None


def main(argv=None):
    """Entry point of the console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:  # accepted anywhere, before or after the subcommand
        args = ["--debug"] + [a for a in args if a != "--debug"]
    try:
        cli.main(args=args, prog_name="edgerestore", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EdgeRestoreError as exc:
        if debug:
            traceback.print_exc()
        click.echo(redact("error: %s" % exc), err=True)
        sys.exit(exc.exit_code)
    except ImportError as exc:
        extra = missing_extra(exc)
        if extra is None or debug:
            raise
        click.echo("error: this command needs %s, which this install lacks — pip install 'edgerestore[%s]'"
                   % (extra[0], extra[1]), err=True)
        sys.exit(4)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)

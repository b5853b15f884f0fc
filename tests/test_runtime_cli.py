"""`edgerestore run` and `edgerestore preview` as users run them (the real command)."""

import json

from edgerestore.runtime.sources import open_source


def test_run_file_to_file_prints_json_stats(cli, real_clip, tiny_onnx, tmp_path):
    out = tmp_path / "out.mp4"
    result = cli("run", "--source", real_clip, "--sink", "file://%s" % out, "--sink", "null://",
                 "--model", tiny_onnx, "--stats-every", "0.2", "--quiet")
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["summary"] is True
    assert lines[-1]["frames"] == 36 and lines[-1]["backend"] == "onnxruntime"
    assert set(lines[-1]["sink_ms"]) == {"0:file", "1:null"}
    with open_source(str(out)) as source:
        assert len(list(source)) == 36


def test_run_a_live_pattern_for_some_frames(cli):
    result = cli("run", "-i", "test://pattern?size=64x48&fps=100", "-o", "null://", "-m", "none", "--frames", "20")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["captured"] == 20 and summary["frames"] + summary["dropped"] == 20
    assert "frame(s)" in result.stderr  # the human summary goes to stderr


def test_run_bad_inputs_get_one_line_that_names_the_fix(cli, tmp_path):
    result = cli("run", "--source", "webcam://0", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown source scheme 'webcam://'; choose one of: csi://")
    assert "v4l2://" in result.stderr and "test://" in result.stderr and "Traceback" not in result.stderr
    result = cli("run", "--source", "v4l2://%s" % (tmp_path / "video0"), check=False)
    assert result.returncode == 7 and "is it plugged in? `v4l2-ctl --list-devices`" in result.stderr
    result = cli("run", "-i", "test://pattern", "-o", "ftp://x", "-m", "none", check=False)
    assert result.returncode == 2 and "display://" in result.stderr and "http://" in result.stderr
    result = cli("run", "-i", "test://pattern", "-m", "no-such-preset", check=False)
    assert result.returncode == 2 and "--model" in result.stderr


def test_preview_to_the_browser_sink_headless(cli, tiny_onnx):
    result = cli("preview", "-i", "test://pattern?size=64x48&fps=30", "-o", "http://127.0.0.1:0", "-o", "null://",
                 "-m", tiny_onnx, "--mode", "split", "--duration", "1.5", "--stats")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["summary"] and summary["frames"] > 10
    assert summary["stage_ms"]["compose"] is not None  # the preview composed every frame


def test_help_lists_and_teaches_the_commands(cli):
    top = cli("--help").stdout
    assert "run " in top and "preview " in top
    run_help = cli("run", "--help").stdout
    assert "Examples:" in run_help and "v4l2loopback:///dev/video10" in run_help
    preview_help = cli("preview", "--help").stdout
    for key in ("q  quit", "s  side-by-side <-> split", "b  bypass"):
        assert key in preview_help


def test_the_flags_a_service_gets_are_the_given_ones_with_lists_split(monkeypatch):
    from click.testing import CliRunner

    from edgerestore.cli.run import SERVICE_FLAGS, run
    from edgerestore.runtime.config import FLAGS

    seen = {}
    runner = CliRunner()
    for flag in ("--http", "--resolution", "--log-level", "--log-file"):
        value = "info" if flag == "--log-level" else "x"
        result = runner.invoke(run, ["-i", "test://pattern", flag, value])
        assert result.exit_code == 2 and "%s is a service option: add --service" % flag in result.output

    import edgerestore.runtime.daemon as daemon

    class Recorder(object):
        def __init__(self, path, overrides, **limits):
            seen.update(path=path, overrides=overrides, limits=limits)

        def run(self):
            pass

    monkeypatch.setattr(daemon, "Daemon", Recorder)
    result = runner.invoke(run, ["--service", "-i", "rtsp://cam/live", "-o", "null://", "-o", "file://a.mp4",
                                 "-b", "tensorrt, onnxruntime", "--threads", "2", "--frames", "5"])
    assert result.exit_code == 0, result.output
    assert seen["overrides"] == {"--source": "rtsp://cam/live", "--sink": ["null://", "file://a.mp4"],
                                 "--backend": ["tensorrt", "onnxruntime"], "--threads": 2}
    assert seen["path"] is None and seen["limits"] == {"max_frames": 5, "duration": None}
    assert set(SERVICE_FLAGS) == set(FLAGS)  # every flag the config file takes, and no other

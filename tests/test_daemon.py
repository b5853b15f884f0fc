"""`edgerestore run` as a service, as systemd runs it: the real process, real signals, real
servers on loopback, real files, ONNX Runtime, PyAV and Prometheus' own parser."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT

TOKEN = "0123456789abcdef0123456789abcdef"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process(object):
    """``python -m edgerestore ARGS`` from this checkout, its output in files (a pipe nobody reads
    would block it)."""

    def __init__(self, folder, args, name="service", env=None):
        self.out_path = folder / ("%s.out" % name)
        self.err_path = folder / ("%s.err" % name)
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        full_env.setdefault("EDGERESTORE_CACHE", str(ROOT / ".pytest_cache" / "edgerestore-cache"))
        full_env.update(env or {})
        with open(str(self.out_path), "wb") as out, open(str(self.err_path), "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "edgerestore"] + [str(a) for a in args],
                                         stdout=out, stderr=err, env=full_env, cwd=str(folder))

    @property
    def pid(self):
        return self.proc.pid

    def events(self, name=None):
        records = []
        for line in self.out_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written
            if name is None or record.get("event") == name:
                records.append(record)
        return records

    def describe(self):
        return "stdout:\n%s\nstderr:\n%s" % (self.out_path.read_text()[-4000:], self.err_path.read_text()[-4000:])

    def wait_for(self, predicate, timeout=60.0, what="the condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                raise AssertionError("the process ended (%s) before %s\n%s" % (self.proc.returncode, what,
                                                                              self.describe()))
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s\n%s" % (what, self.describe()))

    def frames(self):
        stats = self.events("stats")
        return stats[-1]["frames"] if stats else 0

    def wait_frames(self, count, timeout=60.0):
        return self.wait_for(lambda: self.frames() >= count, timeout, "%d frames" % count)

    def send(self, signum):
        self.proc.send_signal(signum)

    def wait(self, timeout=30.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the process did not exit in %.0f s\n%s" % (timeout, self.describe()))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def spawn(tmp_path):
    started = []

    def start(*args, **kwargs):
        process = Process(tmp_path, args, name="p%d" % len(started), **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def http_get(url, headers=None, timeout=10.0):
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout)
        return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def scrape(url):
    """``{(metric sample name, labels): value}`` through prometheus-client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    code, body = http_get(url)
    assert code == 200, body
    samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def decoded_frames(path):
    import av

    count = 0
    with av.open(str(path)) as container:
        for _frame in container.decode(video=0):
            count += 1
    return count


@pytest.fixture(scope="module")
def slow_onnx(tmp_path_factory):
    """A student big enough that one CPU thread restores 320x240 slower than 60 frames a second."""
    import torch

    from edgerestore.export.onnx import export_onnx
    from edgerestore.models.config import StudentConfig
    from edgerestore.models.student import StudentNet

    torch.manual_seed(0)
    student = StudentNet(StudentConfig(scale=2, width=48, blocks=6))
    path = tmp_path_factory.mktemp("slow-model") / "slow.onnx"
    export_onnx(student, path)
    return path


# --- signals --------------------------------------------------------------------------------

@pytest.mark.parametrize("signum, fragment", [(signal.SIGTERM, "0"), (signal.SIGINT, "1")],
                         ids=["SIGTERM-classic-mp4", "SIGINT-fragmented-mp4"])
def test_a_signal_during_recording_leaves_an_mp4_that_decodes_to_the_last_frame(spawn, tmp_path, tiny_onnx, signum,
                                                                                fragment):
    out = tmp_path / "rec.mp4"
    service = spawn("run", "--service", "-i", "test://pattern?size=96x64&fps=30", "-o",
                    "file://%s?fragment=%s" % (out, fragment), "-m", tiny_onnx, "--http", "off",
                    "--stats-every", "0.5")
    service.wait_frames(30)
    sent = time.monotonic()
    service.send(signum)
    assert service.wait(20) == 0
    exited_s = time.monotonic() - sent
    stopped = service.events("stopped")[-1]
    assert stopped["drain_s"] < 2.0, stopped  # drained and finalised within two seconds
    written = stopped["sinks"]["file://%s?fragment=%s" % (out, fragment)]["written"]
    assert written >= 30 and decoded_frames(out) == written
    assert service.events("stopping")[0]["reason"] == signal.Signals(signum).name
    assert exited_s < 10  # including the interpreter's exit, on a busy machine


def test_a_sigkill_loses_at_most_two_seconds_of_a_fragmented_recording(spawn, tmp_path):
    """320x240 at 15 FPS is ~25 KB/s: a 256 KiB write buffer would hold 10 s back (a 28-byte file)."""
    out = tmp_path / "rec.mp4"
    service = spawn("run", "--service", "-i", "test://pattern?size=320x240&fps=15", "-o",
                    "file://%s?fragment=1" % out, "-m", "none", "--http", "off", "--stats-every", "0.25")
    service.wait_frames(90, timeout=60)  # six seconds of video
    written = service.events("stats")[-1]["frames"]
    service.proc.kill()
    service.proc.wait(10)
    assert decoded_frames(out) >= written - 2 * 15, (decoded_frames(out), written)


def test_a_restart_never_overwrites_the_last_recording(spawn, tmp_path, cli, real_clip, tiny_onnx):
    out = tmp_path / "rec.mp4"
    for run in range(2):
        service = spawn("run", "--service", "-i", "test://pattern?size=96x64&fps=30", "-o", "file://%s" % out,
                        "-m", "none", "--http", "off", "--stats-every", "0.5")
        service.wait_frames(10 + 10 * run)
        service.send(signal.SIGTERM)
        assert service.wait(20) == 0
    first, second = decoded_frames(out), decoded_frames(tmp_path / "rec.1.mp4")
    assert first >= 10 and second >= 20 and first != second  # both kept, each whole
    result = cli("restore", real_clip, out, "-m", tiny_onnx, "-q")  # restore writes through the same sink
    assert "exists and is kept; wrote %s" % (tmp_path / "rec.2.mp4") in result.stderr
    assert decoded_frames(out) == first and decoded_frames(tmp_path / "rec.2.mp4") > 0


# --- reconnection ---------------------------------------------------------------------------

def test_a_stream_server_that_dies_and_comes_back_is_reconnected(spawn, tmp_path, tiny_onnx):
    upstream, control = free_port(), free_port()
    camera_args = ("run", "-i", "test://pattern?size=96x64&fps=20", "-o", "http://127.0.0.1:%d" % upstream,
                   "-m", "none", "-q")
    camera = spawn(*camera_args)
    config = tmp_path / "svc.toml"
    config.write_text("[source]\nuri = \"http://127.0.0.1:%d/stream.mjpg\"\nreconnect_min_s = 0.2\n"
                      "reconnect_max_s = 1.0\n[model]\npath = \"%s\"\n[output]\nsinks = [\"null://\"]\n"
                      "[http]\nlisten = \"127.0.0.1:%d\"\n[logging]\nstats_every = 0.5\n"
                      % (upstream, tiny_onnx, control))
    service = spawn("run", "--config", config)
    service.wait_frames(10)
    camera.kill()  # the camera's server dies without a goodbye
    lost = service.wait_for(lambda: service.events("source_lost"), 30, "the loss to be noticed")
    assert lost[0]["level"] == "warning" and lost[0]["source"].endswith("/stream.mjpg")
    service.wait_for(lambda: len(service.events("source_open_failed")) >= 2, 30, "reconnection attempts")
    code, body = http_get("http://127.0.0.1:%d/healthz" % control)
    health = json.loads(body.decode("utf-8"))
    assert code == 200 and health["status"] == "degraded" and "reconnecting" in health["reason"]
    assert service.proc.poll() is None  # never exits
    delays = [event["retry_in_s"] for event in service.events("source_open_failed")]
    assert delays[:3] == sorted(delays[:3]) and max(delays) <= 1.0  # exponential, capped
    frames_before = service.frames()
    camera = spawn(*camera_args)  # the camera comes back on the same address
    back = service.wait_for(lambda: service.events("source_reconnected"), 60, "the reconnection")
    assert back[0]["down_s"] > 0
    service.wait_frames(frames_before + 20)  # frames flow again
    metrics = scrape("http://127.0.0.1:%d/metrics" % control)
    assert metrics[("edgerestore_source_reconnects_total", ())] >= 1
    assert metrics[("edgerestore_source_connected", ())] == 1
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0


# --- secrets --------------------------------------------------------------------------------

def test_credentials_in_a_source_url_never_leave_the_process(spawn, tmp_path, cli):
    """The issue's repro: PyAV's error text quotes the raw URL; nothing that leaves the process
    (the log, /healthz, /stats.json, /metrics, `config check`, a one-line error) may show it."""
    from edgerestore.runtime.uri import redact

    secrets = ("SuperSecret99", "QueryTok777")
    dead, control = free_port(), free_port()
    config = tmp_path / "svc.toml"
    config.write_text("[source]\nuri = \"rtsp://admin:SuperSecret99@127.0.0.1:%d/live?token=QueryTok777&ch=1\"\n"
                      "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n[model]\npath = \"none\"\n"
                      "[output]\nsinks = [\"null://\"]\n[http]\nlisten = \"127.0.0.1:%d\"\n"
                      "[logging]\nstats_every = 0.5\n" % (dead, control))
    service = spawn("run", "--config", config)
    service.wait_for(lambda: len(service.events("source_open_failed")) >= 2, 30, "failed connection attempts")
    service.wait_for(lambda: service.events("stats"), 30, "a stats line")
    pages = [http_get("http://127.0.0.1:%d%s" % (control, path))[1].decode("utf-8")
             for path in ("/healthz", "/stats.json", "/metrics")]
    assert "Connection refused" in pages[0] or "cannot open" in pages[0], pages[0]  # the error is there...
    assert "admin:***@" in pages[0]  # ...with the user, not the password
    service.send(signal.SIGTERM)
    service.wait(20)
    check = cli("config", "check", str(config))
    outputs = pages + [service.out_path.read_text(), service.err_path.read_text(), check.stdout, check.stderr]
    leaks = [(secret, text[:300]) for secret in secrets for text in outputs if secret in text]
    assert not leaks, leaks
    assert redact("x 'rtsp://a:b@h/p?Token=t&k=1' y") == "x 'rtsp://a:***@h/p?Token=***&k=1' y"


# --- metrics --------------------------------------------------------------------------------

def test_metrics_scraped_for_real_show_fps_and_drops(spawn, tmp_path, slow_onnx):
    control = free_port()
    service = spawn("run", "--service", "-i", "test://pattern?size=320x240&fps=60", "-o", "null://",
                    "-m", slow_onnx, "--threads", "1", "--http", "127.0.0.1:%d" % control, "--stats-every", "0.5")
    service.wait_for(lambda: any(s["dropped"] for s in service.events("stats")), 60, "drops")
    base = "http://127.0.0.1:%d" % control
    # a viewer that goes away in the middle of the stream does not disturb anything
    with socket.create_connection(("127.0.0.1", control), timeout=10) as viewer:
        viewer.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        assert viewer.recv(100).startswith(b"HTTP/1.0 200")
    metrics = scrape(base + "/metrics")
    assert metrics[("edgerestore_fps", (("backend", "onnxruntime"),))] > 0
    dropped = metrics[("edgerestore_frames_dropped_total", (("before", "infer"),))]
    assert dropped > 0  # one thread restores 320x240 slower than the 60 frames a second that come
    assert metrics[("edgerestore_frames_total", (("backend", "onnxruntime"),))] > 0
    assert metrics[("edgerestore_up", (("status", "ok"),))] == 1
    assert metrics[("edgerestore_latency_seconds", (("quantile", "0.5"),))] > 0
    assert metrics[("process_resident_memory_bytes", ())] > 10e6
    stats = json.loads(http_get(base + "/stats.json")[1].decode("utf-8"))
    assert 0 < stats["dropped_before"]["infer"] <= dropped  # the last periodic line, older than the scrape
    assert stats["backend_info"]["name"] == "onnxruntime"
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0
    summary = [s for s in service.events("stats") if s.get("summary")][-1]
    assert summary["captured"] == summary["frames"] + summary["dropped"]  # every frame accounted for
    assert summary["sinks"]["null://"]["failures"] == 0 and summary["sinks"]["null://"]["skipped"] == 0


# --- fallbacks ------------------------------------------------------------------------------

def test_a_broken_first_backend_falls_back_to_the_second(spawn, tmp_path, tiny_onnx):
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"TFL3" + bytes(200))  # not a flatbuffer the TFLite interpreter can read
    broken = tmp_path / "int8.onnx"
    broken.write_bytes(tiny_onnx.read_bytes()[:500])  # a truncated copy: fails to load
    control = free_port()
    config = tmp_path / "svc.toml"
    config.write_text("[source]\nuri = \"test://pattern?fps=30\"\nresolution = \"96x64\"\n[model]\n"
                      "path = [\"%s\", \"%s\", \"%s\"]\nbackends = [\"tensorrt\", \"tflite\", \"onnxruntime\"]\n"
                      "[http]\nlisten = \"127.0.0.1:%d\"\n[logging]\nstats_every = 0.5\n"
                      % (tflite, broken, tiny_onnx, control))
    service = spawn("run", "--config", config)
    service.wait_frames(10)
    first, second = service.events("backend_failed")[:2]
    assert first["level"] == "warning" and first["candidate"] == "tflite:model.tflite"  # TFLite, then ONNX Runtime
    assert first["during"] == "load" and first["next"] == "onnxruntime:int8.onnx"
    assert second["candidate"] == "onnxruntime:int8.onnx" and second["next"] == "onnxruntime:tiny.onnx"
    loaded = service.events("backend_loaded")[0]
    assert loaded["fallback"] is True and loaded["model"] == str(tiny_onnx)
    health = json.loads(http_get("http://127.0.0.1:%d/healthz" % control)[1].decode("utf-8"))
    assert health["status"] == "degraded" and "running the fallback onnxruntime:tiny.onnx" in health["reason"]
    stats = service.events("stats")[-1]
    assert stats["backend"] == "onnxruntime" and stats["backend_info"]["frames_by_backend"]["onnxruntime"] >= 10
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0


def test_no_model_that_runs_is_one_line_and_a_failure_exit(spawn, tmp_path):
    broken = tmp_path / "only.onnx"
    broken.write_bytes(b"not a model")
    service = spawn("run", "--service", "-i", "test://pattern?size=64x48", "-m", broken, "--http", "off")
    assert service.wait(60) == 4  # systemd's Restart=on-failure tries again later
    assert service.err_path.read_text().startswith("error: no backend could run the model: onnxruntime:only.onnx")


# --- sinks ----------------------------------------------------------------------------------

def test_a_sink_on_a_full_disk_fails_alone_and_keeps_retrying(spawn, tmp_path, tiny_onnx):
    good = tmp_path / "good.mp4"
    config = tmp_path / "svc.toml"
    config.write_text("[source]\nuri = \"test://pattern?size=96x64&fps=30\"\n[model]\npath = \"%s\"\n"
                      "[output]\nsinks = [\"file:///dev/full?format=mp4\", \"file://%s\"]\nretry_min_s = 0.2\n"
                      "retry_max_s = 0.4\n[http]\nlisten = \"off\"\n[logging]\nstats_every = 0.5\n"
                      % (tiny_onnx, good))
    service = spawn("run", "--config", config)
    service.wait_for(lambda: len(service.events("sink_failed")) >= 3, 60, "the full disk to fail and be retried")
    service.wait_frames(45)
    failed = service.events("sink_failed")
    assert all(event["sink"] == "file:///dev/full?format=mp4" for event in failed)
    assert "No space left on device" in failed[0]["error"]
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0
    sinks = service.events("stopped")[-1]["sinks"]
    full, kept = sinks["file:///dev/full?format=mp4"], sinks["file://%s?fragment=1" % good]
    assert full["failures"] >= 3 and full["skipped"] > 0
    assert kept["failures"] == 0 and kept["skipped"] == 0 and kept["written"] >= 45
    assert decoded_frames(good) == kept["written"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; /dev/full covers this as root")
def test_a_sink_in_a_read_only_folder_fails_alone(spawn, tmp_path, tiny_onnx):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    service = spawn("run", "--service", "-i", "test://pattern?size=64x48&fps=30", "-o", "file://%s/x.mp4" % locked,
                    "-o", "null://", "-m", tiny_onnx, "--http", "off", "--stats-every", "0.5")
    service.wait_frames(20)
    assert service.events("sink_failed")[0]["during"] == "open"
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0


# --- reload, systemd, status ----------------------------------------------------------------

def test_a_reload_with_an_unwritable_log_file_keeps_the_old_config_running(spawn, tmp_path, tiny_onnx, cli):
    """Issue 20, item 3: logging.file under /proc killed the service at SIGHUP with a traceback,
    left a 48-byte recording and logged a false 'every sink finalised'."""
    control, out = free_port(), tmp_path / "rec.mp4"
    config = tmp_path / "svc.toml"
    base = ("[source]\nuri = \"test://pattern?size=96x64&fps=30\"\n[model]\npath = \"%s\"\n[output]\n"
            "sinks = [\"file://%s\"]\n[http]\nlisten = \"127.0.0.1:%d\"\n[logging]\nstats_every = 0.5\n"
            % (tiny_onnx, out, control))
    config.write_text(base)
    service = spawn("run", "--config", config)
    service.wait_frames(10)
    config.write_text(base + "file = \"/proc/edgerestore.log\"\n")
    service.send(signal.SIGHUP)
    failed = service.wait_for(lambda: service.events("reload_failed"), 30, "the reload to fail")
    assert len(failed) == 1 and "/proc/edgerestore.log" in failed[0]["error"]
    frames = service.frames()
    service.wait_frames(frames + 15)  # the old configuration keeps running
    health = json.loads(http_get("http://127.0.0.1:%d/healthz" % control)[1].decode("utf-8"))
    assert health["reloads"] == 0 and health["status"] == "ok"
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0
    assert "Traceback" not in service.err_path.read_text()
    assert decoded_frames(out) == service.events("stopped")[-1]["sinks"]["file://%s?fragment=1" % out]["written"] > 0
    # the same mistake at start: one line, exit 6, and `config check` catches it
    start = cli("run", "--config", config, check=False, timeout=60)
    check = cli("config", "check", config, check=False)
    for result in (start, check):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 6 and len(lines) == 1 and "logging.file" in lines[0], result.stderr


def test_sighup_reloads_the_config_without_restarting_and_talks_to_systemd(spawn, tmp_path, tiny_onnx, cli):
    notify_path = str(tmp_path / "notify.sock")
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(notify_path)
    systemd.settimeout(30)
    control = free_port()
    after = tmp_path / "after.mp4"
    config = tmp_path / "svc.toml"
    base = ("[source]\nuri = \"test://pattern?size=96x64&fps=30\"\n[model]\npath = \"%s\"\n[http]\n"
            "listen = \"127.0.0.1:%d\"\n[logging]\nstats_every = 0.5\n" % (tiny_onnx, control))
    config.write_text(base + "[output]\nsinks = [\"null://\"]\n")
    service = spawn("run", "--config", config, env={"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "1500000"})
    messages = []

    def received(prefix):
        while not any(m.startswith(prefix) for m in messages):
            messages.append(systemd.recv(4096).decode("utf-8"))
        return [m for m in messages if m.startswith(prefix)]

    try:
        assert received("READY=1")[0].startswith("READY=1\nSTATUS=running onnxruntime")
        received("WATCHDOG=1")
        service.wait_frames(10)
        status = cli("service", "status", "--config", config)
        assert status.stdout.startswith("ok — frames flow") and "backend onnxruntime" in status.stdout
        pid = service.pid
        other_model = tmp_path / "other.onnx"
        other_model.write_bytes(tiny_onnx.read_bytes())
        config.write_text(base.replace(str(tiny_onnx), str(other_model))
                          + "[output]\nsinks = [\"null://\", \"file://%s\"]\n" % after)
        service.send(signal.SIGHUP)
        reloaded = service.wait_for(lambda: service.events("reloaded"), 30, "the reload")
        assert reloaded[0]["changed"] == ["model", "output"] and service.pid == pid
        assert service.events("backend_loaded")[-1]["model"] == str(other_model)

        def health():
            return json.loads(http_get("http://127.0.0.1:%d/healthz" % control)[1].decode("utf-8"))

        # the new model takes over at the next frame
        service.wait_for(lambda: health()["backend"]["candidate"] == "onnxruntime:other.onnx", 30, "the new model")
        assert health()["status"] == "ok"
        assert received("RELOADING=1")[0].split("\n")[1].startswith("MONOTONIC_USEC=")
        frames = service.frames()
        service.wait_frames(frames + 20)  # the stream never stopped
        config.write_text(base + "[output]\nsinks = [\"null://\"]\nqueue = \"two\"\n")
        line = config.read_text().splitlines().index('queue = "two"') + 1
        service.send(signal.SIGHUP)
        failed = service.wait_for(lambda: service.events("reload_failed"), 30, "the bad reload")
        assert failed[0]["error"].startswith("%s line %d: output.queue: not a whole number" % (config, line))
        assert health()["reloads"] == 1
        service.send(signal.SIGTERM)
        assert service.wait(20) == 0
        assert received("STOPPING=1")
    finally:
        systemd.close()
    written = service.events("stopped")[-1]["sinks"]["file://%s?fragment=1" % after]["written"]
    assert written >= 20 and decoded_frames(after) == written  # the sink added by the reload


def test_binding_beyond_loopback_needs_a_token(spawn, tmp_path, tiny_onnx, cli):
    port = free_port()
    refused = cli("run", "--service", "-i", "test://pattern?size=64x48", "-m", tiny_onnx,
                  "--http", "0.0.0.0:%d" % port, check=False, env={"EDGERESTORE_HTTP_TOKEN": ""})
    assert refused.returncode == 6 and refused.stderr.startswith(
        "error: --http: http.listen: 0.0.0.0 is reachable from the network and needs a token")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    config = tmp_path / "svc.toml"
    config.write_text("[source]\nuri = \"test://pattern?size=64x48&fps=30\"\n[model]\npath = \"%s\"\n[http]\n"
                      "listen = \"0.0.0.0:%d\"\ntoken_file = \"%s\"\n[logging]\nstats_every = 0.5\n"
                      % (tiny_onnx, port, token_file))
    service = spawn("run", "--config", config)
    service.wait_frames(5)
    base = "http://127.0.0.1:%d" % port
    assert http_get(base + "/metrics")[0] == 401
    assert http_get(base + "/metrics", {"Authorization": "Bearer " + TOKEN})[0] == 200
    assert http_get(base + "/healthz")[0] == 200
    status = cli("service", "status", "--config", config, "--json")
    assert json.loads(status.stdout)["status"] == "ok"
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0


# --- soak -----------------------------------------------------------------------------------

SOAK_S = float(os.environ.get("EDGERESTORE_SOAK_S", "300"))


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


@pytest.mark.slow
def test_soak_720p_memory_stays_flat_and_every_drop_is_accounted_for(spawn, tmp_path, tiny_onnx):
    """>= 5 minutes at 1280x720, 30 fps (EDGERESTORE_SOAK_S sets the length): RSS after the warm-up
    grows < 10 %, nothing fails, and captured == written + dropped."""
    control = free_port()
    service = spawn("run", "--service", "-i", "test://pattern?size=1280x720&fps=30", "-o", "null://",
                    "-m", tiny_onnx, "--threads", "1", "--http", "127.0.0.1:%d" % control, "--stats-every", "5",
                    "--duration", SOAK_S)
    warmup_s = min(60.0, SOAK_S / 5.0)
    began = time.monotonic()
    samples = []  # (seconds, rss kB)
    while service.proc.poll() is None:
        elapsed = time.monotonic() - began
        try:
            samples.append((elapsed, _rss_kb(service.pid)))
            if elapsed > warmup_s and len(samples) % 6 == 0:
                scrape("http://127.0.0.1:%d/metrics" % control)  # the endpoint is used, as Prometheus would
        except (OSError, AssertionError, urllib.error.URLError):
            pass  # the process is ending
        time.sleep(5.0)
    assert service.wait(30) == 0
    after = [rss for seconds, rss in samples if seconds >= warmup_s]
    growth = (max(after) - after[0]) / float(after[0])
    summary = [s for s in service.events("stats") if s.get("summary")][-1]
    # when the drops happened, and how busy the stages were then (to explain each one)
    drops, previous = [], 0
    for line in service.events("stats"):
        if line["dropped"] != previous and not line.get("summary"):
            drops.append({"elapsed_s": line["elapsed_s"], "new": line["dropped"] - previous,
                          "before": line["dropped_before"], "infer_ms": line["stage_ms"]["infer"],
                          "latency_ms_p95": line["latency_ms_p95"]})
            previous = line["dropped"]
    report = {"seconds": SOAK_S, "warmup_s": warmup_s, "rss_kb_after_warmup": after[0], "rss_kb_max": max(after),
              "rss_kb_last": after[-1], "growth": round(growth, 4),
              "rss_kb_every_30s": [rss for seconds, rss in samples[::6]], "frames": summary["frames"],
              "captured": summary["captured"], "dropped": summary["dropped"],
              "dropped_at_stop": summary["dropped"] - previous, "drops": drops,
              "dropped_before": summary["dropped_before"], "fps": summary["fps"],
              "latency_ms_p50": summary["latency_ms_p50"], "latency_ms_p95": summary["latency_ms_p95"],
              "stage_ms": summary["stage_ms"], "loadavg_at_end": os.getloadavg()}
    (tmp_path / "soak.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    assert growth < 0.10, report
    assert summary["captured"] == summary["frames"] + summary["dropped"], report
    assert summary["errors"] == 0 and summary["source"]["corrupt"] == 0 and summary["source"]["losses"] == 0
    assert not service.events("sink_failed") and not service.events("backend_failed")


# --- bundles ----------------------------------------------------------------------------------

def _has_bundle_reader():
    import importlib.util

    return importlib.util.find_spec("edgerestore.runtime.bundle") is not None


@pytest.mark.skipif(not _has_bundle_reader(), reason="edgerestore.runtime.bundle is not merged into this checkout yet")
def test_a_bundle_is_checked_against_its_manifest_before_loading(spawn, tmp_path, tiny_onnx):
    import hashlib
    import shutil

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(str(tiny_onnx), str(bundle / "model.onnx"))
    digest = hashlib.sha256((bundle / "model.onnx").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps({
        "schema": 1, "target": "cpu", "files": {"model.onnx": digest},
        "artifacts": [{"format": "onnx", "backend": "onnxruntime", "file": "model.onnx", "verify": {"status": "ok"}}],
    }))
    args = ("run", "--service", "-i", "test://pattern?size=64x48&fps=30", "-m", bundle, "--http", "off",
            "--stats-every", "0.5")
    service = spawn(*args)
    service.wait_frames(5)
    assert service.events("bundle_verified")[0]["bundle"] == str(bundle)
    assert service.events("backend_loaded")[0]["model"] == str(bundle / "model.onnx")
    service.send(signal.SIGTERM)
    assert service.wait(20) == 0
    data = (bundle / "model.onnx").read_bytes()
    (bundle / "model.onnx").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped in transit
    tampered = spawn(*args)
    assert tampered.wait(60) == 4
    error = tampered.err_path.read_text()
    assert error.startswith("error: no usable model: %s: bundle %s: model.onnx does not match its manifest"
                            % (bundle, bundle)), error
    assert tampered.events("model_rejected") and not tampered.events("backend_loaded")

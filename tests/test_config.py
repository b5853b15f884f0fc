"""The service's config file: the TOML reader, validation errors with key and line, overrides,
`config init --device`, `config check`."""

import textwrap
from types import SimpleNamespace

import pytest
import tomllib

from edgerestore.errors import ConfigError
from edgerestore.runtime import tomlsubset
from edgerestore.runtime.config import FIELDS, load_config, profile_settings, render_config

# --- the TOML reader ------------------------------------------------------------------------

RICH = '''
# a comment
title = "top"   # trailing comment
[source]
uri = "rtsp://user:p\\u00e4ss@cam/live?x=1#frag"
literal = 'C:\\path\\no escapes'
escapes = "tab\\tquote\\"back\\\\slash"
[numbers]
int = 1_000
neg = -17
hex = 0xFF
oct = 0o17
bin = 0b101
float = 0.5
exp = 1e-3
signed = +2.5E2
yes = true
no = false
[lists]
empty = []
mixed = [
  "a",  # first
  'b',
  # a comment line
  3, 4.5, true,   # trailing comma next
]
nested = [[1, 2], ["x"]]
'''


def test_reader_agrees_with_tomllib_on_what_it_supports():
    ours = tomlsubset.loads(RICH)
    assert ours.to_dict() == tomllib.loads(RICH)
    assert ours.tables["source"]["uri"] == ("rtsp://user:päss@cam/live?x=1#frag", 5)
    assert ours.tables["lists"]["mixed"][1] == 21  # the line of the key


@pytest.mark.parametrize("text, line, words, valid_toml", [
    ('a = 1\nb = "unclosed\n', 2, "not closed", False),
    ("a = 1\nb = csi://0\n", 2, 'strings need quotes: b = "csi://0"', False),
    ("[t]\na = 1\na = 2\n", 3, "set twice (first on line 2)", False),
    ("[t]\n[t]\n", 2, "appears twice", False),
    ("a = 1 2\n", 1, "one key = value per line", False),
    ("a = [1, 2\n\n", 1, "not closed", False),
    ("a = [1 2]\n", 1, "need commas", False),
    ('a = "\\q"\n', 1, "unknown escape", False),
    ("a 1\n", 1, "expected '='", False),
    ("a =\n", 1, "has no value", False),
    # valid TOML that this reader refuses on purpose (a config file does not need it)
    ("x = {a = 1}\n", 1, "inline tables", True),
    ("[a.b]\n", 1, "nested tables", True),
    ("[[a]]\n", 1, "arrays of tables", True),
    ('\n\na.b = 1\n', 3, "dotted keys", True),
    ('"q" = 1\n', 1, "quoted keys", True),
    ('a = """x"""\n', 1, "multi-line strings", True),
    ("a = 1979-05-27\n", 1, "dates and times", True),
    ("a = inf\n", 1, "inf and nan", True),
])
def test_reader_refuses_what_it_does_not_support_with_the_line(text, line, words, valid_toml):
    with pytest.raises(tomlsubset.TomlError) as info:
        tomlsubset.loads(text)
    assert info.value.line == line and words in str(info.value)
    if valid_toml:
        tomllib.loads(text)
    else:
        with pytest.raises(tomllib.TOMLDecodeError):
            tomllib.loads(text)


# --- validation: every invalid field names the key and the line -----------------------------

def _write(tmp_path, body, name="svc.toml"):
    path = tmp_path / name
    path.write_text(body)
    return path


BAD_FIELDS = [
    # (table, bad line, key, words in the message)
    ("source", 'uri = "webcam://0"', "source.uri", "unknown source scheme webcam:// (got 'webcam://0') — accepted: csi://"),
    ("source", "uri = 5", "source.uri", "not a string"),
    ("source", 'resolution = "1280*720"', "source.resolution", "not WIDTHxHEIGHT"),
    ("source", "fps = -1", "source.fps", "out of range (got -1) — accepted: a number from 0 to 240"),
    ("source", 'fps = "30"', "source.fps", "not a number"),
    ("source", "reconnect_min_s = 0", "source.reconnect_min_s", "accepted: a number > 0"),
    ("model", 'path = "no/such/model.onnx"', "model.path", "no/such/model.onnx does not exist"),
    ("model", 'path = "nopreset"', "model.path", "no shipped model named 'nopreset'"),
    ("model", "path = []", "model.path", "is empty"),
    ("model", 'backends = ["tflit"]', "model.backends", "unknown backend 'tflit' (got ['tflit']) — accepted: onnxruntime"),
    ("model", 'backends = ["onnxruntime", "onnxruntime"]', "model.backends", "lists 'onnxruntime' twice"),
    ("model", 'backends = "onnxruntime, tflite"', "model.backends", "unknown backend 'onnxruntime, tflite'"),
    ("model", 'providers = ["gpu"]', "model.providers", "accepted: tensorrt, cuda, cpu"),
    ("model", "threads = 1.5", "model.threads", "not a whole number"),
    ("model", "threads = -1", "model.threads", "out of range"),
    ("model", 'warmup = "yes"', "model.warmup", "not true or false"),
    ("output", 'sinks = ["ftp://x"]', "output.sinks", "unknown sink scheme ftp://"),
    ("output", "sinks = [1]", "output.sinks", "not a list of strings"),
    ("output", "queue = 0", "output.queue", "a whole number from 1 to 64"),
    ("output", "retry_min_s = -1", "output.retry_min_s", "out of range"),
    ("http", 'listen = "8080"', "http.listen", "not HOST:PORT"),
    ("http", 'listen = "0.0.0.0:8080"', "http.listen", "needs a token"),
    ("http", 'token = "short"', "http.token", "too short"),
    ("http", 'token_file = "/no/such/token"', "http.token_file", "does not exist"),
    ("model", 'deblur = "sideways"', "model.deblur", "accepted: none, motion"),
    ("model", "exposure = 1.5", "model.exposure", "a number > 0 and <= 1"),
    ("logging", 'level = "verbose"', "logging.level", "accepted: debug, info, warning, error"),
    ("logging", 'file = "/no/such/dir/x.log"', "logging.file", "does not exist"),
    ("logging", "stats_every = 0", "logging.stats_every", "out of range"),
    ("logging", "telemetry = 1", "logging.telemetry", "not true or false"),
    ("service", 'user = "Root Admin"', "service.user", "not a valid user name"),
    ("service", "watchdog_s = -5", "service.watchdog_s", "out of range"),
    ("service", "stall_s = 0", "service.stall_s", "out of range"),
    ("service", "stop_timeout_s = 100", "service.stop_timeout_s", "a number > 0 and <= 60"),
    # values that parse but can never run (issue 20, item 6)
    ("source", "fps = 1e308", "source.fps", "a number from 0 to 240"),
    ("source", 'resolution = "100000x100000"', "source.resolution", "each side from 16 to 7680"),
    ("source", "reconnect_max_s = 1e20", "source.reconnect_max_s", "a number > 0 and <= 3600"),
    ("output", "retry_max_s = 86400", "output.retry_max_s", "a number > 0 and <= 3600"),
    ("logging", "stats_every = 1e9", "logging.stats_every", "a number > 0 and <= 3600"),
    ("service", "watchdog_s = 1e20", "service.watchdog_s", "a number from 0 to 3600"),
    ("service", "stall_s = 1e6", "service.stall_s", "a number > 0 and <= 3600"),
]


@pytest.mark.parametrize("table, bad, key, words", BAD_FIELDS, ids=[case[1] for case in BAD_FIELDS])
def test_every_invalid_field_gives_one_line_with_key_line_and_accepted_values(tmp_path, tiny_onnx, table, bad, key,
                                                                           words):
    # model.path must be valid unless it is the field under test (no preset may be shipped here).
    model = "" if key == "model.path" else '[model]\npath = "%s"\n' % tiny_onnx
    body = "# service config\n%s\n[%s]\n# the next line is wrong\n%s\n" % (model, table, bad)
    if table == "model" and model:
        body = "# service config\n[model]\npath = \"%s\"\n# the next line is wrong\n%s\n" % (tiny_onnx, bad)
    line = body.splitlines().index(bad) + 1
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = str(info.value)
    assert message.startswith("%s line %d: %s: " % (path, line, key)), message
    assert words in message and "\n" not in message
    if "token" not in key:
        assert "accepted" in message


def test_a_secret_is_never_echoed(tmp_path):
    path = _write(tmp_path, '[http]\ntoken = "hunter2"\n[model]\npath = "none"\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert "hunter2" not in str(info.value) and "%s line 2: http.token" % path in str(info.value)


@pytest.mark.parametrize("body, line, words", [
    ('[source]\nuri = "test://pattern"\n[sinks]\n', 3, "unknown table [sinks] — accepted: [source], [model]"),
    ('[source]\n\nurl = "x"\n', 3, "unknown key source.url in [source] — accepted: fps, reconnect_max_s"),
    ('uri = "x"\n', 1, "unknown key uri in the top level"),
    ("[source]\nuri = v4l2:///dev/video0\n", 2, "strings need quotes"),
    ("[source]\nreconnect_max_s = 1e400\n", 2, "reconnect_max_s = 1e400 is too large for a number"),
    ("[output]\nsinks = " + "[" * 5000 + "]" * 5000 + "\n", 2, "nested more than 16 deep"),
])
def test_unknown_tables_keys_and_syntax_name_the_line(tmp_path, body, line, words):
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value).startswith("%s line %d: " % (path, line)) and words in str(info.value)


def test_rules_between_settings_name_the_later_key(tmp_path, tiny_onnx):
    body = "[model]\npath = %r\n[source]\nreconnect_min_s = 5\nreconnect_max_s = 1\n" % str(tiny_onnx)
    with pytest.raises(ConfigError) as info:
        load_config(str(_write(tmp_path, body)))
    assert str(info.value) == ("%s line 5: source.reconnect_max_s: smaller than source.reconnect_min_s (got 1) — "
                               "accepted: a number >= 5" % (tmp_path / "svc.toml"))
    body = '[model]\npath = %r\nbackends = ["onnxruntime"]\nproviders = ["cuda"]\n' % str(tiny_onnx)
    assert load_config(str(_write(tmp_path, body))).model.providers == ["cuda"]


def test_flags_override_the_file_and_say_so(tmp_path, tiny_onnx):
    body = '[source]\nuri = "test://pattern"\nresolution = "320x240"\n[model]\npath = %r\n' % str(tiny_onnx)
    config = load_config(str(_write(tmp_path, body)), {"--source": "test://pattern?fps=5", "--sink": ["null://"],
                                                        "--backend": ["onnxruntime"], "--stats-every": 2})
    assert config.source.uri == "test://pattern?fps=5" and config.origins["source"]["uri"] == "--source"
    assert config.source.resolution == (320, 240)
    assert config.origins["source"]["resolution"] == "%s line 3" % (tmp_path / "svc.toml")
    assert config.source_uri() == "test://pattern?fps=5&size=320x240"  # the camera is asked for it
    assert config.model.backends == ["onnxruntime"] and config.logging.stats_every == 2.0
    assert config.origins["logging"]["level"] == "default"
    with pytest.raises(ConfigError, match=r"^--backend: model.backends: unknown backend 'tflit'"):
        load_config(str(_write(tmp_path, body)), {"--backend": ["tflit"]})
    described = "\n".join(config.describe())
    assert "source.uri = 'test://pattern?fps=5'  # --source" in described


def test_resolution_is_not_forced_on_sources_that_do_not_take_it(tmp_path, real_clip, tiny_onnx):
    config = load_config(None, {"--source": str(real_clip), "--resolution": "640x480", "--model": str(tiny_onnx)})
    assert config.source_uri() == str(real_clip)


# --- config init ----------------------------------------------------------------------------

# A profile with the small interface the config writer reads (edgerestore.devices.profiles rows
# have these attributes, and more).
BOARD = SimpleNamespace(name="rpi4", title="Raspberry Pi 4 Model B", backends=("onnxruntime",),
                        resolution=(480, 640), preset="pico")


def test_rendered_config_is_commented_valid_toml_with_every_setting(tmp_path, tiny_onnx):
    text = render_config(BOARD)
    assert tomllib.loads(text)["source"] == {
        "uri": "csi://0", "resolution": "640x480", "fps": 0, "reconnect_min_s": 0.5, "reconnect_max_s": 30.0}
    for field in FIELDS:
        assert "\n# %s\n%s = " % ("\n# ".join(textwrap.wrap(field.help, 98)), field.key) in text
    assert "--device rpi4" in text and "Raspberry Pi 4 Model B" in text
    path = _write(tmp_path, text)
    config = load_config(str(path), {"--model": str(tiny_onnx)})  # pico weights may not be shipped here
    assert config.model.backends == ["onnxruntime"] and config.source.uri == "csi://0"
    assert profile_settings(SimpleNamespace(name="cpu", backends=["onnxruntime"], resolution=(720, 1280),
                                            preset="nano"))["source"] == "v4l2:///dev/video0"


def test_config_init_for_a_real_board_profile(cli, tmp_path):
    from edgerestore.devices.profiles import get_profile

    out = tmp_path / "rpi4.toml"
    cli("config", "init", "--device", "rpi4", "--output", out)
    written = tomllib.loads(out.read_text())
    profile = get_profile("rpi4")
    assert written["model"]["backends"] == list(profile.backends)
    assert written["source"]["resolution"] == "%dx%d" % (profile.resolution[1], profile.resolution[0])
    again = cli("config", "init", "--device", "rpi4", "--output", out, check=False)
    assert again.returncode == 6 and "--force" in again.stderr


def test_config_init_for_an_unknown_board_lists_the_known_ones(cli):
    result = cli("config", "init", "--device", "rpi9", check=False)
    assert result.returncode == 2 and "unknown device 'rpi9'; choose one of: cpu, jetson-nano" in result.stderr


def test_config_init_and_check_through_the_command(cli, tmp_path, tiny_onnx):
    text = cli("config", "init").stdout
    assert text == render_config(None)
    path = tmp_path / "svc.toml"
    path.write_text(text.replace('path = "nano"', 'path = "%s"' % tiny_onnx))
    checked = cli("config", "check", path)
    assert "ok: %s" % path in checked.stderr and "model.path = ['%s']  # %s line" % (tiny_onnx, path) in checked.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace('level = "info"', 'level = "loud"'))
    line = bad.read_text().splitlines().index('level = "loud"') + 1
    for args in (("config", "check", bad), ("run", "--config", bad)):
        result = cli(*args, check=False)
        assert result.returncode == 6 and result.stdout == ""
        assert result.stderr == ("error: %s line %d: logging.level: not one of the choices (got 'loud') — "
                                 "accepted: debug, info, warning, error\n" % (bad, line))

"""The board table and the export targets that point at it."""

import pytest

from edgerestore.devices.profiles import PROFILES, get_profile
from edgerestore.errors import UnknownNameError
from edgerestore.export.targets import FORMATS, TARGETS, select_formats


def test_every_target_points_at_a_profile_and_builds_only_what_the_board_runs():
    from edgerestore.devices.profiles import FAMILIES

    for target in TARGETS.values():
        if target.name in FAMILIES:  # one bundle for several boards: what every member runs
            for member in FAMILIES[target.name]:
                backends = set(FORMATS[name].backend for name in target.formats)
                assert backends <= set(PROFILES[member].backends), (target.name, member)
                assert target.opset <= TARGETS[member].opset and target.ir_version <= TARGETS[member].ir_version
            continue
        profile = PROFILES[target.profile]
        backends = [FORMATS[name].backend for name in target.formats]
        assert set(backends) <= set(profile.backends), target.name
        # The preferred artifact is for the board's preferred backend at its default precision.
        first = FORMATS[target.formats[0]]
        assert first.backend == profile.backends[0] and first.precision == profile.precision, target.name
        for name in target.formats:
            if FORMATS[name].backend == "tensorrt" and FORMATS[name].precision == "int8":
                assert profile.gpu_int8, "%s builds TensorRT INT8 but its GPU has none" % target.name


def test_jetson_nano_facts_and_its_int8_fallback():
    nano = get_profile("jetson-nano")
    assert (nano.compute_capability, nano.gpu_int8, nano.tensorrt, nano.python) == ("5.3", False, "8.2", "3.6")
    target = TARGETS["jetson-nano"]
    assert target.opset <= 13 and target.ir_version <= 7  # what TensorRT 8.2 parses
    formats, warnings = select_formats(target, precision="int8")
    assert [f.name for f in formats] == ["tensorrt-fp16", "onnx-fp16"]
    assert len(warnings) == 1 and "sm_53" in warnings[0] and "FP16" in warnings[0]
    orin = get_profile("jetson-orin")
    assert orin.gpu_int8 and "tensorrt-int8" in TARGETS["jetson-orin"].formats


def test_pi_profiles():
    rpi4 = get_profile("rpi4")
    assert rpi4.cores == 4 and "A72" in rpi4.cpu and rpi4.python == "3.11" and rpi4.backends[0] == "tflite"
    assert get_profile("rpi5").backends[0] == "tflite"


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as info:
        get_profile("jetson-tx1")
    assert "jetson-nano" in str(info.value) and "rpi4" in str(info.value)
    with pytest.raises(UnknownNameError) as info:
        select_formats(TARGETS["cpu"], formats=["tflite"])
    assert "onnx-int8" in str(info.value)


def test_setup_notes_exist():
    for profile in PROFILES.values():
        if profile.setup:
            with open(profile.setup_path) as handle:
                assert profile.name.split("-")[0] in handle.read().lower()


def test_devices_command_lists_every_board(cli):
    result = cli("devices")
    for name in PROFILES:
        assert name in result.stdout
    one = cli("devices", "jetson-nano")
    assert "5.3" in one.stdout and "tensorrt, onnxruntime" in one.stdout
    bad = cli("devices", "nope", check=False)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "jetson-nano" in bad.stderr


def test_the_devices_table_fits_100_columns_and_wide_shows_everything(cli):
    narrow = cli("devices").stdout.splitlines()
    assert max(len(line) for line in narrow) <= 100 and "--wide" in narrow[-1]
    wide = cli("devices", "--wide").stdout
    assert "Python 3.6" in wide and "Cortex-A57" in wide

"""Backends declare their options and precisions; config, the service and bench read the declarations."""

import inspect

import pytest

from edgerestore.errors import ConfigError
from edgerestore.runtime.backends import REGISTRY, backend_class, create_backend, option_values


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_backends_declared_options_are_what_its_constructor_takes(name):
    cls = backend_class(name)
    taken = set(inspect.signature(cls.__init__).parameters) - {"self", "threads"}
    assert set(cls.options) == taken, name
    assert all(isinstance(text, str) and text for text in cls.options.values())
    assert isinstance(cls.precisions, tuple)


def test_an_option_a_backend_does_not_declare_is_one_line_naming_the_accepted_ones():
    with pytest.raises(ConfigError) as info:
        create_backend("onnxruntime", xnnpack=True)
    assert "takes no option xnnpack" in str(info.value) and "providers" in str(info.value)


def test_settings_reach_only_the_backends_that_declare_them():
    settings = {"providers": "cpu", "xnnpack": None, "unrelated": 3}
    assert option_values("onnxruntime", settings) == {"providers": "cpu"}
    assert option_values("tflite", settings) == {}
    assert option_values("tensorrt", settings) == {}


def test_a_service_config_hands_providers_to_onnx_runtime_only(tmp_path):
    from edgerestore.runtime.artifacts import resolve

    class Model(object):
        providers = ["cpu"]

    (tmp_path / "m.tflite").write_bytes(b"x")
    assert [c.options for c in resolve("nano", settings=Model())] == [{"providers": ["cpu"]}]
    assert [c.options for c in resolve(str(tmp_path / "m.tflite"), settings=Model())] == [{}]

"""`restore`, `run` and `bench` take the same --model specs and give the same error wording."""

import pytest


@pytest.mark.parametrize("spec,words", [
    ("giga", "unknown preset 'giga'; choose one of: nano"),
    ("missing/model.onnx", "model missing/model.onnx does not exist"),
])
def test_the_three_commands_give_the_same_one_line_error(cli, gopro_pair, tmp_path, spec, words):
    image = str(gopro_pair[0])
    results = [
        cli("restore", image, tmp_path / "out.png", "--model", spec, check=False),
        cli("run", "--source", "test://pattern?frames=2", "--sink", "null://", "--model", spec, check=False),
        cli("bench", spec, "--no-quality", "--frames", "1", "--sizes", "64x64", "--out", tmp_path / "b.json",
            check=False),
    ]
    lines = [r.stderr.strip() for r in results]
    assert all(r.returncode != 0 for r in results), lines
    assert all(line.startswith("error: ") and words in line and "\n" not in line for line in lines), lines
    assert len(set(lines)) == 1, lines

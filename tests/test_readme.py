"""README's promises that CI depends on: two set-up commands near the top, and .ci/run runs the
test one verbatim."""

import re

from tests.conftest import ROOT


def _setup_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_shows_exactly_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    install_and_demo, install_and_test = commands
    assert "edgerestore demo" in install_and_demo
    assert "pytest" in install_and_test


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _setup_commands()[1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_every_extra_in_the_readme_commands_exists():
    setup_py = (ROOT / "setup.py").read_text()
    for command in _setup_commands():
        for extras in re.findall(r"\[([a-z0-9,]+)\]", command):
            for extra in extras.split(","):
                assert re.search(r"[\"']%s[\"']\s*:" % extra, setup_py), extra

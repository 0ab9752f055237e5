"""The front door: README's commands exist and CI runs exactly README's test command."""

import re

from .conftest import REPO


def fenced_commands(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = [c for c in fenced_commands(readme) if "pytest" in c and "\n" not in c]
    assert len(commands) == 1, commands
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[0] in ci.splitlines()


def test_readme_demo_command_installs_pinned_torch():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    demo = [c for c in fenced_commands(readme) if "pip install" in c and c.endswith("contrec demo")]
    assert len(demo) == 1 and "-c constraints.txt" in demo[0]
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text()

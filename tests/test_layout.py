"""The shape of the package: layers in folders, small modules and functions, imports that flow one way."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "contrec"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 100
UPPER_LAYERS = ("contrec.experiments", "contrec.cli")  # nothing below them may import them


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path, module_level_only: bool) -> set[str]:
    """The contrec modules ``name`` imports (``from a import b`` counts as ``a.b`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    nodes = _runtime_nodes(tree.body, module_level_only)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def _runtime_nodes(body: list[ast.stmt], module_level_only: bool) -> list[ast.AST]:
    """The statements that run (``if TYPE_CHECKING:`` blocks are for type checkers), nested ones too unless
    ``module_level_only``."""
    out: list[ast.AST] = []
    for node in body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            out += _runtime_nodes(node.orelse, module_level_only)
            continue
        out.append(node)
        if not module_level_only:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    out += _runtime_nodes([child], module_level_only)
                else:
                    out += [n for n in ast.walk(child) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "all-imports"])
def test_no_import_circles_between_files(module_level_only):
    # the package root re-exports everything, and lower layers import their own package's __init__
    # only through their leaf modules; a circle is reported as the files that form it
    graph = {name: _imports(name, path, module_level_only) for name, path in MODULES.items() if name != "contrec"}
    graph = {name: {m for m in deps if m != "contrec"} for name, deps in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_core_never_imports_experiments_or_the_cli():
    offenders = []
    for name, path in MODULES.items():
        if name in ("contrec", "contrec.__main__") or name.startswith(UPPER_LAYERS):
            continue
        for dep in _imports(name, path, module_level_only=False):
            if dep.startswith(UPPER_LAYERS):
                offenders.append(f"{name} imports {dep}")
    assert not offenders, offenders


def test_importing_contrec_loads_neither_experiments_nor_the_cli():
    import subprocess
    import sys

    code = ("import sys, contrec, contrec.models.contrastive; "
            "print(sorted(m for m in sys.modules if m.startswith(('contrec.experiments', 'contrec.cli'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_modules_and_functions_stay_small():
    big_modules, big_functions = [], []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            big_modules.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    big_functions.append(f"{name}.{node.name}: {length} lines")
    assert not big_modules and not big_functions, big_modules + big_functions


def test_every_package_folder_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = set(config["tool"]["setuptools"]["packages"])
    folders = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert folders <= declared, sorted(folders - declared)

"""The package's shape: no import circles, no module too long to read, few modules at the top.

The imports are read from the source (``ast``), so this sees every import, also those
inside functions and under ``TYPE_CHECKING``: a circle through a lazy import is still a
circle for the reader.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import stylize
from stylize import config
from stylize.cli import app

PACKAGE = Path(stylize.__file__).resolve().parent
MAX_LINES = 400
MAX_TOP_LEVEL = 8


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The stylize modules that module ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return {module for module in found if module in known and module != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (its modules in order, the first repeated at the end), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_circles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_an_indirect_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_too_long() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_few_modules_at_the_top() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} modules at the top of stylize/: {top}"


def test_the_config_is_torch_free_and_the_help_shows_its_defaults() -> None:
    code = "import sys, stylize.config; sys.exit(sorted({'torch', 'PIL', 'numpy'} & set(sys.modules)) or 0)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    runner = CliRunner()
    wide = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    apply_help = " ".join(runner.invoke(app, ["apply", "--help"], env=wide).output.split())
    assert f"CUDA, {config.AUTO_TILE_ONNX} on ONNX Runtime, {config.AUTO_TILE_OTHER} elsewhere" in apply_help
    assert f"[default: {config.DEFAULT_SMOOTHING}]" in apply_help
    sheet_help = " ".join(runner.invoke(app, ["sheet", "--help"], env=wide).output.split())
    assert f"[default: {config.SHEET_CELL[1]}]" in sheet_help
    evaluate_help = " ".join(runner.invoke(app, ["evaluate", "--help"], env=wide).output.split())
    assert f"[default: {','.join(map(str, config.EVALUATE_BUDGETS))}]" in evaluate_help


def test_the_apply_side_and_every_package_init_import_no_torch() -> None:
    light = ["stylize.apply", "stylize.cli", "stylize.io", "stylize.model", "stylize.runtime", "stylize.train",
             "stylize.apply.job", "stylize.apply.open", "stylize.apply.onnx_backend", "stylize.apply.plan",
             "stylize.apply.batch", "stylize.apply.video", "stylize.apply.sheet"]
    light += [f"stylize.io.{path.stem}" for path in sorted((PACKAGE / "io").glob("*.py"))]  # all of io/
    code = f"import importlib, sys; [importlib.import_module(m) for m in {light!r}]; sys.exit('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr or "torch was imported"


def test_the_readme_layout_names_every_module_in_its_package():
    """The README's layout section is the newcomer's map: every module of the tree is on it, in its package."""
    import re

    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("\n## How the code is laid out\n", 1)[1].split("```", 2)[1]
    packages: dict[str, str] = {"": ""}
    current = ""
    for line in block.splitlines()[1:]:  # after "stylize/"
        heading = re.match(r"  (\w+)/ ", line)
        if heading:
            current = heading.group(1)
            packages[current] = ""
        packages[current] += line + "\n"
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        package = path.parent.relative_to(PACKAGE).as_posix().replace(".", "")
        text = packages.get(package, "")
        name = path.stem if package else path.name
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text), f"{path.relative_to(PACKAGE)} is not in the README's layout"

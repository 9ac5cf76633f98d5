"""The layers import only downwards (DESIGN.md section 1), and the files a student reads first
stay short: kernels/ imports nothing from ops/, no command imports the CLI, nothing below the
commands imports UserError, ops/conv.py fits in 300 lines, Tensor.backward in 40."""
import ast
import inspect
import textwrap
from pathlib import Path

import tinygrad_yolo as tg

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tinygrad_yolo"


def imported_modules(path):
    """Every module a file imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def test_kernels_import_nothing_from_ops():
    for path in (ROOT / "kernels").glob("*.py"):
        assert not [m for m in imported_modules(path) if "ops" in m.split(".")], path


def test_no_command_imports_the_cli_and_nothing_below_them_imports_user_error():
    for path in PACKAGE.rglob("*.py"):
        names = imported_modules(path)
        if path.parent.name == "commands":
            assert "tinygrad_yolo.cli" not in names, path
        elif path.name != "cli.py":
            assert not [m for m in names if m.endswith("UserError")], path


ENGINE = ("tensor.py", "function.py", "ops/elementwise.py")


def test_the_readme_says_how_long_the_engine_is():
    """README's first paragraph names the engine's files and their line count: kept true here,
    and kept short (the engine a student reads in one sitting)."""
    import re

    lines = sum(len((PACKAGE / f).read_text().splitlines()) for f in ENGINE)
    intro = (ROOT / "README.md").read_text().split("\n## ")[0]
    stated = re.search(r"whole engine is three files, (\d[\d,]*) lines", intro)
    assert stated, "README's first paragraph no longer says how long the engine is"
    assert int(stated.group(1).replace(",", "")) == lines, f"the engine is {lines} lines now"
    assert all(f"tinygrad_yolo/{f}" in intro for f in ENGINE)
    assert lines <= 700


def test_the_reading_path_stays_short():
    assert len((PACKAGE / "ops" / "conv.py").read_text().splitlines()) <= 300
    source = textwrap.dedent(inspect.getsource(tg.Tensor.backward))
    assert len([line for line in source.splitlines() if line.strip()]) <= 40

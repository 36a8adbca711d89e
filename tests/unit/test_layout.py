"""The house's shape: folders are the pipeline's stages, imports only run down the stages, the
packaging lists every package, and no module outgrows a screenful of screens.

Read from the source (the AST of every module, its function-level imports included), so it needs
no server and no model. The order is documented in docs/architecture.md.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "evalkit"

# Each stage may import from itself and from the stages before it, never after.
STAGES = ["core", "specs", "loaders", "datasets", "backends", "plan", "scoring", "send", "results", "exams",
          "analysis", "runs", "cli"]
APART = {"testserver"}   # test infrastructure: may use any stage; no stage may import it
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every evalkit module this file imports, resolved to absolute names."""
    me = module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == "evalkit"}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PKG / parts[1]).is_dir() else None


def sources() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "static" not in p.parts)


def test_every_module_lives_in_a_stage_folder():
    loose = [p.name for p in PKG.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == []
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(STAGES) | APART


def test_imports_only_run_down_the_stages():
    upward = []
    for path in sources():
        here = stage_of(module_name(path))
        if here is None or here in APART:
            continue
        for target in imports(path):
            there = stage_of(target)
            if there in APART or (there is not None and STAGES.index(there) > STAGES.index(here)):
                upward.append(f"{module_name(path)} -> {target}")
    assert upward == []


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_packaging_lists_every_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(p) for p in PKG.rglob("__init__.py")} | {"evalkit.registry"}
    assert listed == found

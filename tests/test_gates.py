"""The quality gates: pyproject.toml's ruff and mypy settings catch what they are meant to, and
scripts/test runs both before the suite (see docs/quality-gates.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_settings_flag_an_unused_import_and_a_late_bound_loop_variable(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef make():\n    fs = []\n    for i in range(3):\n"
                   "        fs.append(lambda: i)\n    return fs\n")
    done = _run(str(BIN / "ruff"), "check", "--config", str(ROOT / "pyproject.toml"), "--output-format", "concise",
                "bad.py", cwd=tmp_path)
    assert done.returncode == 1
    codes = sorted(line.split()[1] for line in done.stdout.splitlines() if line.startswith("bad.py:"))
    assert codes == ["B023", "F401"]


def test_mypy_settings_flag_a_possibly_none_value_and_check_pydantic_models(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from pydantic import BaseModel\n\n\nclass M(BaseModel):\n    n: int\n\n\n"
                   "def f(x: int | None) -> int:\n    return x + 1\n\n\nM(m=1)\n")
    done = _run(str(BIN / "mypy"), "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                str(tmp_path / "cache"), "--no-error-summary", "bad.py", cwd=tmp_path)
    assert done.returncode == 1
    errors = sorted(line.split(":")[1] + " " + line.rsplit("[", 1)[1].rstrip("]")
                    for line in done.stdout.splitlines() if ": error:" in line)
    # line 9: None + 1; line 12: the pydantic plugin (init_forbid_extra) knows M has `n`, not `m`
    assert errors == ["12 call-arg", "9 operator"]
    assert 'Unexpected keyword argument "m" for "M"' in done.stdout


def test_scripts_test_runs_ruff_then_mypy_before_pytest():
    lines = [ln.strip() for ln in (ROOT / "scripts" / "test").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith(("#", "echo"))]
    assert lines.index("set -euo pipefail") < lines.index(".venv/bin/ruff check evalkit tests scripts") \
        < lines.index(".venv/bin/mypy") < lines.index('exec .venv/bin/python -m pytest -q -n auto --dist loadgroup "$@"')
    # the only pytest before the gates is the fast tier's, behind --fast
    fast = [i for i, ln in enumerate(lines) if "-m pytest" in ln and "tests/unit" in ln]
    assert fast and all(lines[i - 2] == 'if [[ "${1:-}" == "--fast" ]]; then' for i in fast)

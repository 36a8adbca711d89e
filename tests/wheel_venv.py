"""A fresh virtualenv holding evalkit's wheel, and plug-in packages built as wheels into it: shared
by test_install.py and test_plugins.py (each builds its own venv once per module)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT


def build_venv(base: Path) -> Path:
    """A fresh virtualenv holding evalkit's wheel (built from this checkout) and nothing of the tree.

    Its dependencies are this environment's installed packages, put on its path by a .pth line
    (downloading them all again would take minutes); the source tree is not on that path (the
    editable install's hook is a .pth file there, which a path line does not run), and `pip check`
    proves the wheel's declared dependencies resolve."""
    import sysconfig

    # Built from a copy of the package's sources, so setuptools' build/ and egg-info folders land
    # in this test's own folder: two builds at once (two workers, two suites) never share one.
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "evalkit", "registry"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(
            ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(base / "dist"), str(source)],
                   check=True, capture_output=True)
    wheel = next((base / "dist").glob("evalkit-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    python = str(base / "venv" / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "evalkit-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # Only what the wheel itself requires: the extras' modules (pytest, the test server's old
    # matcher, torch, ...) are on that path too, so imports of them fail here as in a plain install.
    # A finder that refuses them (not None entries in sys.modules: scipy peeks there for torch and
    # would take None for the module).
    Path(site, "evalkit_test_no_extras.py").write_text(textwrap.dedent(f"""\
        import sys

        class NoExtras:
            blocked = set({extra_modules()!r})

            @classmethod
            def find_spec(cls, name, path=None, target=None):
                if name.partition(".")[0] in cls.blocked:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, NoExtras)
        """))
    Path(site, "evalkit-test-no-extras.pth").write_text("import evalkit_test_no_extras\n")
    # --ignore-installed: the dependencies' path also holds this checkout's editable install, which
    # pip would otherwise take for the wheel already installed (and install nothing)
    pip(base / "venv", "install", "-q", "--no-deps", "--ignore-installed", str(wheel))
    check = pip(base / "venv", "check", ok=False)
    assert "evalkit" not in check.stdout, check.stdout          # every dependency the wheel declares is there
    return base / "venv"


def extra_modules() -> list[str]:
    """The top-level modules of the packages evalkit's extras (local, test) bring and its core
    dependencies do not."""
    from importlib.metadata import packages_distributions, requires

    def name(req: str) -> str:
        return re.split(r"[<>=!~ ;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")

    reqs = requires("evalkit") or []
    core = {name(r) for r in reqs if "extra ==" not in r}
    extra = {name(r) for r in reqs if "extra ==" in r} - core
    return sorted(m for m, dists in packages_distributions().items()
                  if any(name(d) in extra for d in dists) and not any(name(d) in core for d in dists))


def pip(venv: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """This environment's pip acting on `venv` (a venv without pip of its own is made in a second)."""
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args],
                          check=ok, capture_output=True, text=True)


def installed(venv: Path, *args: str, env: dict | None = None, cwd: Path) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("EVALKIT_", "PYTHON", "VIRTUAL_ENV"))}
    full.update(env or {})
    return subprocess.run([str(venv / "bin" / "evalkit"), *args], capture_output=True, text=True, env=full, cwd=cwd,
                          timeout=600)


def install_plugin(venv: Path, folder: Path, files: dict[str, str]) -> str:
    """Build the package `files` describe as a wheel and install it into `venv`; its name."""
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(textwrap.dedent(text))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(folder / "dist"), str(folder)], check=True, capture_output=True)
    pip(venv, "install", "-q", "--no-deps", str(next((folder / "dist").glob("*.whl"))))
    return re.search(r'name = "(.+)"', files["pyproject.toml"]).group(1)

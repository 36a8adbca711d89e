"""`evalkit data pull` of MATH, MATH-500, AIME and MGSM from their pinned homes, against the local
mirror server that answers in each home's layout (tests/data_mirror.py): GitHub raw files, the
Git LFS media URL PRM800K's file is served from, and MATH's 5,000-file listing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from conftest import one_line_error
from data_mirror import Mirror

ROOT = Path(__file__).resolve().parent.parent
CAT = yaml.safe_load((ROOT / "registry/datasets.yaml").read_text(encoding="utf-8"))
MANIFEST = (ROOT / "registry/math-test.manifest").read_text(encoding="utf-8").splitlines()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def mirror(data_dir, tmp_path):
    m = Mirror(data_dir).start()
    m.registry = m.override_registry(tmp_path / "registry")
    prefix = CAT["math"]["listing"]["url"]
    for line in MANIFEST:
        if line and not line.startswith("#"):
            rel = line.split()[2]
            m.files[m.path_of(prefix + rel)] = (data_dir / "math" / rel).read_bytes()
    yield m
    m.stop()


@pytest.fixture
def online(mirror, tmp_path):
    return {"EVALKIT_DATA_DIR": "", "EVALKIT_DATA_MIRROR": mirror.url, "HF_ENDPOINT": mirror.url,
            "EVALKIT_REGISTRY": str(mirror.registry), "EVALKIT_CACHE_DIR": str(tmp_path / "dl")}


def test_pull_gives_the_published_bytes(evalkit, online, mirror, data_dir, tmp_path):
    for name in ("mgsm", "aime", "math500"):
        res = evalkit("data", "pull", name, env=online)
        assert res.returncode == 0, res.stderr
        for rel, f in CAT[name]["files"].items():
            got = tmp_path / "dl" / "data" / name / rel
            assert sha(got) == f["sha256"] == sha(data_dir / name / rel), rel
    fetched = {r["path"] for r in mirror.log if r["method"] == "GET"}
    assert "/media.githubusercontent.com/media/openai/prm800k/7ecc794703b2877f63226f2477a49b34f9b25163/prm800k/math_splits/test.jsonl" in fetched
    assert all(not p.startswith("/raw.githubusercontent.com/eth-sri/matharena/") or "/96440b20d0b90bb504edb7ee43c0e1e46567569f/data/aime/" in p
               or p.endswith("/LICENSE") for p in fetched)
    rows = {r["name"]: r for r in map(json.loads, evalkit("data", "list", "--json", env=online).stdout.splitlines())}
    assert rows["mgsm"]["license"] == "CC BY 4.0" and rows["mgsm"]["state"] == "cached"
    assert rows["math"]["license"].startswith("MIT; AoPS claims") and rows["math500"]["license"].startswith("MIT; AoPS")
    assert rows["aime"]["license"].startswith("(c) MAA")
    assert rows["math500"]["source"] == "github.com/openai/prm800k@7ecc794703b2"
    assert rows["math"]["size"] == sum(p.stat().st_size for p in (data_dir / "math").rglob("*") if p.is_file())
    assert rows["aime"]["size"] == sum(f["size"] for f in CAT["aime"]["files"].values())


def test_math_listing_pulls_every_file_and_refuses_a_changed_one(evalkit, online, mirror, data_dir, tmp_path):
    # The shipped listing, cut to 40 files in a registry of its own (a manifest beside a catalogue wins).
    cut = [line for line in MANIFEST if not line.startswith("#")][::125]
    (mirror.registry / "math-test.manifest").write_text("\n".join(cut) + "\n", encoding="utf-8")
    assert evalkit("data", "pull", "math", env=online).returncode == 0
    got = sorted(p.relative_to(tmp_path / "dl" / "data" / "math").as_posix()
                 for p in (tmp_path / "dl" / "data" / "math" / "test").rglob("*.json"))
    assert got == sorted(line.split()[2] for line in cut) and len(got) == 40
    assert all(sha(tmp_path / "dl" / "data" / "math" / r) == sha(data_dir / "math" / r) for r in got)
    # A file that is not what the listing pins is refused, in one line naming it.
    bad = cut[0].split()[2]
    good = (data_dir / "math" / bad).read_bytes()
    mirror.tamper[mirror.path_of(CAT["math"]["listing"]["url"] + bad)] = good.replace(b"Level", b"LEVEL")
    (mirror.registry / "math-test.manifest").write_text(cut[0] + "\n", encoding="utf-8")     # a new entry: fetched again
    msg = one_line_error(evalkit("data", "pull", "math", env=online))
    assert "failed verification" in msg and cut[0].split()[0] in msg


def test_broken_listing_manifest_is_one_line(evalkit, online, mirror):
    (mirror.registry / "math-test.manifest").write_text("not a digest line\n", encoding="utf-8")
    msg = one_line_error(evalkit("data", "list", env=online))
    assert "math-test.manifest:1" in msg and "<sha256> <size> <path>" in msg

"""Benchmark data fetched from its real home: the real download code against a local mirror server.

`data_mirror.Mirror` serves ../shared/data in the layout of each real source (raw GitHub paths, the
published archives rebuilt in their real layout, a Hugging Face Hub resolve endpoint). evalkit is
pointed at it with EVALKIT_DATA_MIRROR and HF_ENDPOINT, exactly as a user would point it at an
internal mirror, and must produce byte-identical files, resume a cut download, refuse corrupted
bytes, and score every benchmark exactly as it does from EVALKIT_DATA_DIR.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import read_jsonl
from data_mirror import Mirror, drop_fixture, mmmlu_fixture

CAT = yaml.safe_load((Path(__file__).resolve().parent.parent / "registry/datasets.yaml").read_text())


@pytest.fixture
def mirror(data_dir, tmp_path):
    m = Mirror(data_dir).start()
    m.registry = m.override_registry(tmp_path / "registry")
    yield m
    m.stop()


@pytest.fixture
def online(mirror, tmp_path):
    """Environment of a user without EVALKIT_DATA_DIR whose downloads go to the mirror."""
    return {"EVALKIT_DATA_DIR": "", "EVALKIT_DATA_MIRROR": mirror.url, "HF_ENDPOINT": mirror.url,
            "EVALKIT_REGISTRY": str(mirror.registry), "EVALKIT_CACHE_DIR": str(tmp_path / "dl"),
            "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(res, code=2) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def cache(tmp_path: Path) -> Path:
    return tmp_path / "dl" / "data"


# ----------------------------------------------------------------------------- bytes and hashes

def test_pull_all_gives_the_mirror_bytes(evalkit, online, data_dir, tmp_path, mirror):
    res = evalkit("data", "pull", "all", env={**online, "EVALKIT_REGISTRY": str(mirror.registry)})
    # Only fr and de of MMMLU are on this mirror: the first missing language stops the pull, in one line.
    msg = one_line_error(res)
    assert "mmlu-translated/ar" in msg and "openai/MMMLU" in msg and "404" in msg
    for name in ("mmlu", "arc", "winogrande", "gsm8k", "humaneval", "hellaswag", "truthfulqa", "medqa", "agieval"):
        assert f"{name}: downloaded and verified at {cache(tmp_path) / name}" in res.stdout
    # Every file a loader reads is byte-identical to the offline mirror's copy.
    for name in ("arc", "winogrande", "gsm8k", "humaneval", "hellaswag", "truthfulqa", "medqa", "agieval"):
        for rel, f in CAT[name]["files"].items():
            got = cache(tmp_path) / name / rel
            assert sha(got) == f["sha256"] == sha(data_dir / name / rel), rel
    for split in ("dev", "val", "test"):
        ours = sorted(p.name for p in (cache(tmp_path) / "mmlu" / split).iterdir())
        assert ours == sorted(p.name for p in (data_dir / "mmlu" / split).iterdir())
        assert all(sha(cache(tmp_path) / "mmlu" / split / n) == sha(data_dir / "mmlu" / split / n) for n in ours)
    assert not (cache(tmp_path) / "mmlu" / "auxiliary_train").exists()     # in the archive, not wanted
    assert sorted(p.name for p in (cache(tmp_path) / "arc").rglob("*.jsonl")) == sorted(
        p.name for p in (data_dir / "arc").rglob("*.jsonl"))
    assert not list(cache(tmp_path).rglob("*.partial")) and not (cache(tmp_path) / "ar").exists()

    # Verified data is never fetched again.
    before = len(mirror.log)
    res = evalkit("data", "pull", "gsm8k", "mmlu", "medqa", env=online)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("already cached") == 3 and len(mirror.log) == before


def test_list_shows_size_license_cached_and_source(evalkit, online, tmp_path):
    assert evalkit("data", "pull", "humaneval", env=online).returncode == 0
    res = evalkit("data", "list", "--json", env=online)
    rows = {r["name"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert rows["humaneval"]["state"] == "cached" and rows["gsm8k"]["state"] == "-"
    assert rows["humaneval"]["source"] == "github.com/openai/human-eval@6d43fb980f9f"
    assert rows["humaneval"]["license"] == "MIT" and rows["humaneval"]["size"] == 44877 + 1083
    assert rows["mmlu"]["source"] == "https://people.eecs.berkeley.edu/~hendrycks/data.tar"
    assert rows["medqa"]["source"].startswith("hf://datasets/GBaker/MedQA-USMLE-4-options@0fb93dd23a73")
    assert {f"mmlu-translated/{x}" for x in "ar bn de es fr hi id it ja ko pt sw yo zh".split()} <= set(rows)
    table = evalkit("data", "list", env=online).stdout.splitlines()
    assert table[0].split() == ["name", "size", "license", "cached", "source"]
    assert any(line.split()[:5] == ["humaneval", "46.0", "kB", "MIT", "cached"] for line in table)


def test_shipped_catalogue_matches_the_offline_mirror(evalkit, data_dir):
    """Every digest in the shipped catalogue that a shared file can check, checks."""
    res = evalkit("data", "verify", "--dir", str(data_dir), env={"EVALKIT_REGISTRY": ""})
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.split("\n")[:-1] == [f"ok   {n}" for n in CAT if (data_dir / n).exists()]
    assert "17 dataset(s) checked" in res.stderr


# ----------------------------------------------------------------------------- resume, corruption, safety

def test_cut_download_resumes_with_range(evalkit, online, mirror, tmp_path, data_dir):
    path = mirror.path_of(CAT["gsm8k"]["files"]["train.jsonl"]["url"])
    mirror.cut.add(path)
    msg = one_line_error(evalkit("data", "pull", "gsm8k", env=online))
    assert "gsm8k" in msg and "resume" in msg
    partial = cache(tmp_path) / ".staging" / "gsm8k" / "train.jsonl.partial"
    size = (data_dir / "gsm8k" / "train.jsonl").stat().st_size
    assert partial.stat().st_size == size // 2
    assert not (cache(tmp_path) / "gsm8k").exists()           # nothing half-written where loaders look

    res = evalkit("data", "pull", "gsm8k", env=online)
    assert res.returncode == 0, res.stderr
    gets = [r for r in mirror.log if r["path"] == path]
    assert [g["range"] for g in gets] == [None, f"bytes={size // 2}-"]
    assert sha(cache(tmp_path) / "gsm8k" / "train.jsonl") == CAT["gsm8k"]["files"]["train.jsonl"]["sha256"]
    assert not list(cache(tmp_path).rglob("*.partial"))


def test_server_that_ignores_range_starts_over(evalkit, online, mirror, tmp_path):
    path = mirror.path_of(CAT["hellaswag"]["files"]["hellaswag_val_full.txt.bz2"]["url"])
    mirror.cut.add(path)
    one_line_error(evalkit("data", "pull", "hellaswag", env=online))
    mirror.ignore_range = True
    assert evalkit("data", "pull", "hellaswag", env=online).returncode == 0
    assert sha(cache(tmp_path) / "hellaswag" / "hellaswag_val_full.txt.bz2") == \
        CAT["hellaswag"]["files"]["hellaswag_val_full.txt.bz2"]["sha256"]


def test_corrupted_file_is_refused_and_not_kept(evalkit, online, mirror, tmp_path, start_server):
    path = mirror.path_of(CAT["humaneval"]["files"]["HumanEval.jsonl.gz"]["url"])
    good = mirror.files[path]
    mirror.tamper[path] = good[:-1] + bytes([good[-1] ^ 1])
    msg = one_line_error(evalkit("data", "pull", "humaneval", env=online))
    assert "failed verification" in msg and CAT["humaneval"]["files"]["HumanEval.jsonl.gz"]["sha256"] in msg
    assert "deleted" in msg and "humaneval" in msg
    assert not (cache(tmp_path) / "humaneval").exists() and not list(cache(tmp_path).rglob("*.partial"))
    # The same refusal on first use by `evalkit run`, naming the variable for an offline copy.
    server = start_server([], default_reply="A")
    msg = one_line_error(evalkit("run", "humaneval", "--model", "openai/m", "--base-url", server.url, env=online))
    assert "failed verification" in msg and "EVALKIT_DATA_DIR" in msg
    assert server.stats().get("requests", 0) == 0
    del mirror.tamper[path]
    assert evalkit("data", "pull", "humaneval", env=online).returncode == 0


def test_corrupted_archive_member_and_mmlu_rows_are_refused(evalkit, online, mirror, tmp_path, data_dir):
    # A tampered answer in one MMLU test file: the archive digest is made to match, the rows do not.
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(mirror.archives["mmlu"])) as tf:
        for m in tf.getmembers():
            entries[m.name] = tf.extractfile(m).read()
    entries["data/test/anatomy_test.csv"] = entries["data/test/anatomy_test.csv"].replace(b",A\n", b",B\n", 1)
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tf:
        for name, body in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
    _replace_archive(mirror, "mmlu", bad.getvalue())
    msg = one_line_error(evalkit("data", "pull", "mmlu", env=online))
    assert "mmlu" in msg and "failed verification for test" in msg and "not kept" in msg
    assert not (cache(tmp_path) / "mmlu").exists() and not (cache(tmp_path) / ".staging" / "mmlu").exists()


def _replace_archive(mirror: Mirror, name: str, body: bytes) -> None:
    mirror.files[mirror.path_of(CAT[name]["archive"]["url"])] = body
    mirror.archives[name] = body
    mirror.override_registry(mirror.registry)


def test_archive_that_escapes_or_links_is_refused(evalkit, online, mirror, tmp_path):
    for member, kind in (("data/test/../../../escape_test.csv", "file"), ("data/test/link_test.csv", "symlink")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo(member)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            else:
                info.size = 4
                tf.addfile(info, io.BytesIO(b"x,y\n"))
        _replace_archive(mirror, "mmlu", buf.getvalue())
        msg = one_line_error(evalkit("data", "pull", "mmlu", env=online))
        assert "refused" in msg and member in msg
        assert not (cache(tmp_path) / "mmlu").exists()
        assert not list(tmp_path.rglob("escape_test.csv")) and not list(tmp_path.rglob("link_test.csv"))


def test_hub_file_checked_against_the_hubs_digest(evalkit, online, mirror, tmp_path):
    path = f"/datasets/openai/MMMLU/resolve/{CAT['mmlu-translated/fr']['files']['mmlu_FR-FR.csv']['hub']['revision']}/test/mmlu_FR-FR.csv"
    mirror.tamper[path] = mmmlu_fixture("fr").replace(b"Question 3", b"Question 9")
    msg = one_line_error(evalkit("data", "pull", "mmlu-translated/fr", env=online))
    assert "mmlu-translated/fr" in msg and "does not match the digest the Hub reports" in msg
    assert not (cache(tmp_path) / "mmlu-translated" / "fr").exists()
    del mirror.tamper[path]
    res = evalkit("data", "pull", "mmlu-translated/fr", env=online)
    assert res.returncode == 0, res.stderr
    assert (cache(tmp_path) / "mmlu-translated" / "fr" / "mmlu_FR-FR.csv").read_bytes() == mmmlu_fixture("fr")
    # Hub-style requests only: HEAD then GET of the pinned revision.
    assert {(r["method"], r["path"]) for r in mirror.log if "MMMLU" in r["path"]} == {("HEAD", path), ("GET", path)}


def test_verify_reports_and_removes_a_bad_cached_file(evalkit, online, tmp_path):
    assert evalkit("data", "pull", "gsm8k", "winogrande", env=online).returncode == 0
    assert evalkit("data", "verify", env=online).stdout.splitlines() == ["ok   winogrande", "ok   gsm8k"]
    victim = cache(tmp_path) / "gsm8k" / "test.jsonl"
    victim.write_bytes(victim.read_bytes().replace(b"#### 18", b"#### 19", 1))
    bad = sha(victim)
    res = evalkit("data", "verify", env=online)
    assert res.returncode == 1
    assert f"bad  gsm8k: {victim}: sha256 {bad}, expected {CAT['gsm8k']['files']['test.jsonl']['sha256']}" in res.stdout
    assert "ok   winogrande" in res.stdout and "2 dataset(s) checked" in res.stderr and ", 1 bad" in res.stderr
    assert not (cache(tmp_path) / "gsm8k").exists()
    assert evalkit("data", "pull", "gsm8k", env=online).returncode == 0      # fetched again, verified


# ----------------------------------------------------------------------------- messages

def test_offline_messages_name_dataset_url_and_variable(evalkit, tmp_path):
    env = {"EVALKIT_DATA_DIR": "", "EVALKIT_DATA_MIRROR": "http://127.0.0.1:9", "EVALKIT_CACHE_DIR": str(tmp_path / "c")}
    msg = one_line_error(evalkit("run", "gsm8k", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", env=env))
    url = "http://127.0.0.1:9/raw.githubusercontent.com/openai/grade-school-math/3101c7d5072418e28b9008a6636bde82a006892c"
    assert msg.startswith(f"evalkit: error: gsm8k: cannot download {url}")
    assert "set EVALKIT_DATA_DIR to a folder holding gsm8k/" in msg and "unset" not in msg
    # A wrong EVALKIT_DATA_DIR: say what it must hold, and that unsetting it downloads (true now).
    (tmp_path / "empty").mkdir()
    msg = one_line_error(evalkit("run", "gsm8k", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                                 env={**env, "EVALKIT_DATA_DIR": str(tmp_path / "empty")}))
    assert f"data not found at {tmp_path / 'empty' / 'gsm8k'}" in msg
    assert "point it at a folder holding gsm8k, or unset it to download into the cache" in msg


# ----------------------------------------------------------------------------- the done-when

BENCHMARKS = ["mmlu", "arc-challenge", "arc-easy", "hellaswag", "winogrande", "gsm8k", "humaneval",
              "truthfulqa-mc1", "truthfulqa-mc2", "medqa", "agieval", "agieval-cloze", "drop", "mmlu-translated.fr"]
COMPARED = ("id", "group", "target", "messages_sha256", "extracted", "parsed", "score", "extras", "option_probs")


def _offline_copy(data_dir: Path, root: Path) -> Path:
    """EVALKIT_DATA_DIR for the comparison: the shared data (linked, not copied) plus the fixtures
    for DROP and MMMLU, which have no local copy."""
    root.mkdir()
    for d in data_dir.iterdir():
        if d.is_dir():
            (root / d.name).symlink_to(d)
    (root / "drop").mkdir()
    (root / "drop" / "drop_dataset_dev.json").write_bytes(drop_fixture())
    (root / "mmlu-translated" / "fr").mkdir(parents=True)
    (root / "mmlu-translated" / "fr" / "mmlu_FR-FR.csv").write_bytes(mmmlu_fixture("fr"))
    return root


def _samples(log: str) -> list[dict]:
    """The compared fields of each sample, in id order (samples are logged as they finish)."""
    recs = [{k: r.get(k) for k in COMPARED} for r in read_jsonl(log) if r["type"] == "sample"]
    return sorted(recs, key=lambda r: r["id"])


def test_every_benchmark_scores_the_same_downloaded_or_offline(evalkit, online, data_dir, tmp_path, start_server, mirror):
    server = start_server([], default_reply="A\nThe answer is 1.\nAnswer: 1")   # an option, a number, a last answer line: every scorer reads one
    args = ["run", *BENCHMARKS, "--model", "openai/m", "--base-url", server.url, "--limit", "20", "--json", "--no-cache"]
    offline = _offline_copy(data_dir, tmp_path / "offline")
    res_off = evalkit(*args, "--log-dir", str(tmp_path / "logs-offline"), env={"EVALKIT_DATA_DIR": str(offline)})
    assert res_off.returncode == 0, res_off.stderr
    res_on = evalkit(*args, "--log-dir", str(tmp_path / "logs-online"), env=online)
    assert res_on.returncode == 0, res_on.stderr
    off = {s["eval"]: s for s in map(json.loads, res_off.stdout.splitlines())}
    on = {s["eval"]: s for s in map(json.loads, res_on.stdout.splitlines())}
    assert list(on) == list(off) == BENCHMARKS
    for name in BENCHMARKS:
        a, b = _samples(off[name]["log"]), _samples(on[name]["log"])
        assert len(a) == off[name]["n"] == {"drop": 4, "mmlu-translated.fr": 8}.get(name, 20), name
        assert a == b, name
        assert on[name]["metrics"] == off[name]["metrics"], name
    assert off["drop"]["n"] == 4 and off["mmlu-translated.fr"]["n"] == 8
    # Downloaded once each, into the cache; EVALKIT_DATA_DIR's copy was only read.
    fetched = {r["path"] for r in mirror.log if r["method"] == "GET"}
    assert mirror.path_of(CAT["mmlu"]["archive"]["url"]) in fetched
    assert sum(1 for r in mirror.log if r["method"] == "GET" and r["path"].endswith("data.tar")) == 1
    assert sorted(p.name for p in (tmp_path / "dl" / "data").iterdir() if not p.name.startswith(".")) == sorted(
        ["mmlu", "arc", "hellaswag", "winogrande", "gsm8k", "humaneval", "truthfulqa", "medqa", "agieval", "drop",
         "mmlu-translated"])
    assert not (tmp_path / "dl" / "data" / "mmlu-translated" / "de").exists()   # only the language asked for
    assert not list(offline.glob("*/.evalkit-manifest.json")) and not list(offline.glob("*/*/.evalkit-manifest.json"))

"""The real OpenAI Evals registry (the `evals` 3.0.1.post1 wheel from PyPI, fetched on first use
into a cache, never into the repository), run as it is through `evalkit run --registry`.

Answer keys are built here from the registry's own JSONL files with json alone: the conversation
OpenAI Evals would send (the sample's `input`, few-shot chats inserted before its last message,
MMLU questions in MultipleChoice's layout), answered with the sample's first ideal.
"""

from __future__ import annotations

import collections
import csv
import fcntl
import json
import os
import shutil
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from conftest import read_jsonl

WHEEL = "evals==3.0.1.post1"


@pytest.fixture(scope="session")
def oai_registry() -> Path:
    base = Path(os.environ.get("EVALKIT_TEST_CACHE") or Path.home() / ".cache" / "evalkit-tests") / "evals-3.0.1.post1"
    registry = base / "evals" / "registry"
    base.mkdir(parents=True, exist_ok=True)
    with open(base.parent / "evals.lock", "w") as lock:      # test processes running at once fetch it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (registry / "evals").is_dir():
            fetch(base)
    return registry


def fetch(base: Path) -> None:
    """The wheel's registry, extracted beside and then moved in, so a killed fetch leaves no half registry."""
    res = subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(base), "-q"],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"could not download {WHEEL}: {res.stderr[-500:]}"
    wheel = next(base.glob("evals-3.0.1.post1-*.whl"))
    partial = base / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(partial, [n for n in z.namelist() if n.startswith("evals/registry/")])
    shutil.rmtree(base / "evals", ignore_errors=True)
    (partial / "evals").rename(base / "evals")
    partial.rmdir()


def inventory(evalkit, registry: Path) -> dict[str, dict]:
    res = evalkit("list", "--registry", str(registry), "--json")
    assert res.returncode == 0, res.stderr
    return {r["name"]: r for r in map(json.loads, res.stdout.splitlines())}


EXPECTED = {"basic.match:Match": 288, "basic.includes:Includes": 173, "multiple_choice:MultipleChoice": 57,
            "modelgraded.classify:ModelBasedClassify": 55, "basic.fuzzy_match:FuzzyMatch": 38,
            "basic.json_match:JsonMatch": 3}


def short(cls: str) -> str:
    return cls.removeprefix("evals.elsuite.")


def test_registry_inventory(evalkit, oai_registry):
    inv = inventory(evalkit, oai_registry)
    assert len(inv) == 850
    ok = collections.Counter(short(r["class"]) for r in inv.values() if r["supported"])
    assert dict(ok) == EXPECTED
    # what is refused, and why, in one line each
    refused = {n: r["reason"] for n, r in inv.items() if not r["supported"]}
    assert "not supported: evals.elsuite.basic.match_with_solvers:MatchWithSolvers" in refused["theory_of_mind"]
    assert "modelgraded spec battle, which grades 2 inputs at once" in refused["rap-people-vs-people"]
    assert "hf://hellaswag" in refused["hellaswag"]
    missing = [n for n, r in refused.items() if "samples file" in r and "not found" in r]
    assert sorted(missing) == ["stock-option-terms-inverse-iron-butteryfly-spread", "stock-options-iron-butteryfly-spread"]


def conversation(sample: dict, shots: list[list[dict]]) -> list[dict]:
    msgs = [{"role": "user", "content": sample["input"]}] if isinstance(sample["input"], str) else sample["input"]
    if shots:
        msgs = msgs[:-1] + [m for chat in shots for m in chat] + msgs[-1:]
    return [{"role": m.get("role", "user"), "content": m["content"]} for m in msgs]


def key_for(oai_registry: Path, inv: dict, data_dir: Path) -> tuple[list[dict], dict, dict]:
    """Answer key for every basic eval and the MMLU MultipleChoice ones; per eval, line -> conversation
    and first ideal; and the conversations that different samples want different replies for."""
    entries = {}
    for f in (oai_registry / "evals").rglob("*.yaml"):
        entries.update({k: v for k, v in (yaml.load(f.read_text(), Loader=yaml.CSafeLoader) or {}).items()
                        if isinstance(v, dict)})
    wanted: dict[str, set] = collections.defaultdict(set)
    per_eval: dict[str, dict] = {}
    key = []
    for name, row in inv.items():
        if not row["supported"] or "ModelBased" in row["class"]:
            continue
        target = entries[name]
        while "class" not in target:
            target = entries[target["id"]]
        args = target["args"]
        items = {}
        if "MultipleChoice" in row["class"]:
            subject = args["dataset"].split("name=")[1].split("&")[0]
            with open(data_dir / "mmlu" / "val" / f"{subject}_val.csv", newline="", encoding="utf-8") as fh:
                for i, r in enumerate(csv.reader(fh)):
                    text = (args.get("instructions") or "") + "\nPlease answer with the letter of the correct answer.\n\n" \
                        + r[0] + "\n" + "\n".join(f"{letter}) {c}" for letter, c in zip("ABCD", r[1:5]))
                    items[f"{subject}/{i}"] = ([{"role": "user", "content": text}], r[5])
        else:
            shots = []
            if int(args.get("num_few_shot") or 0) > 0:
                shots = [json.loads(x)["sample"] for x in (oai_registry / "data" / args["few_shot_jsonl"]).read_text()
                         .splitlines() if x.strip()][: int(args["num_few_shot"])]
            for lineno, line in enumerate((oai_registry / "data" / args["samples_jsonl"]).read_text(encoding="utf-8")
                                          .splitlines(), 1):
                if line.strip():
                    s = json.loads(line)
                    ideal = s["ideal"] if isinstance(s["ideal"], list) else [s["ideal"]]
                    items[str(lineno)] = (conversation(s, shots), ideal[0])
        convs = {}
        for sid, (msgs, reply) in items.items():
            ck = json.dumps([[m["role"], m["content"]] for m in msgs], ensure_ascii=False)
            wanted[ck].add(reply)
            convs[sid] = ck
            key.append({"messages": msgs, "reply": reply, "ck": ck})
        per_eval[name] = convs
    conflicted = {ck for ck, replies in wanted.items() if len(replies) > 1}
    return key, per_eval, conflicted


def run_all(evalkit, oai_registry, server, names, tmp_path, *extra) -> tuple[dict[str, dict], str]:
    res = evalkit("run", "--registry", str(oai_registry), *names, "--model", "openai/m", "--base-url", server.url,
                  "--json", "--quiet", "--log-dir", str(tmp_path / "logs"), *extra, timeout=1800)
    out = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(out) == len(names)
    # an eval whose replies were mostly not read (the wrong string below, under a JSON scorer) makes
    # the whole command exit 1 (issue 24); nothing else may
    unread = [s["eval"] for s in out if s["unparsed"] > 0.5 * (s["scored"] + s["invalid_grades"])]
    assert res.returncode == (1 if unread else 0), res.stderr[-2000:]
    problems = [line for line in res.stderr.splitlines() if not line.startswith("evalkit: warning: ")]
    assert problems[:-1] == [f"evalkit: {name}: {s['unparsed']} of {s['scored']} answered samples could not be read "
                             "(more than 50%: see docs/results.md); the score says more about the answer format than "
                             "the model" for name, s in ((n, next(x for x in out if x["eval"] == n)) for n in unread)]
    return {s["eval"]: s for s in out}, res.stderr


def test_registry_runs_end_to_end(evalkit, start_server, oai_registry, data_dir, tmp_path):
    """Every basic and MultipleChoice eval of the registry in one run: the server answers the ideal
    for alternate evals (accuracy 1.0) and a fixed wrong reply for the others (accuracy 0.0)."""
    inv = inventory(evalkit, oai_registry)
    key, per_eval, conflicted = key_for(oai_registry, inv, data_dir)
    names = sorted(per_eval)
    assert len(names) == sum(v for k, v in EXPECTED.items() if "ModelBased" not in k) == 559
    keyed = set(names[::2])
    answered = {k["ck"]: k for k in key}
    key = [answered.pop(ck) for name in keyed for ck in set(per_eval[name].values()) if ck in answered]
    keyed_convs = {k.pop("ck") for k in key}
    # a reply with no letter, digit or space: no ideal can be a prefix, substring or fuzzy part of it
    server = start_server(key, default_reply="\u2603")
    runs, err = run_all(evalkit, oai_registry, server, names, tmp_path, "--limit", "6")
    assert "icelandic-inflection-hard: 6 of 6 answered samples could not be read" in err     # a JSON scorer's
    perfect, zero, checked, by_class = 0, 0, 0, collections.Counter()
    for name in names:
        s = runs[name]
        assert s["scored"] == min(6, len(per_eval[name])) and s["errors"] == 0, name
        recs = [r for r in read_jsonl(s["log"]) if r["type"] == "sample"]
        if name in keyed:
            clean = [r for r in recs if per_eval[name][r["id"]] not in conflicted]
            assert all(r["score"] == 1.0 for r in clean), (name, [r for r in clean if r["score"] != 1.0][:2])
            if len(clean) == len(recs):
                assert s["metrics"]["accuracy"]["value"] == 1.0, name
                perfect += 1
                by_class[short(inv[name]["class"])] += 1
        else:
            clean = [r for r in recs if per_eval[name][r["id"]] not in keyed_convs]
            for r in clean:      # only an empty (or punctuation-only) ideal can match the wrong reply
                assert r["score"] == 0.0 or (r["target"] or "").strip(string.punctuation + " \n") == "", (name, r)
            zero += s["metrics"]["accuracy"]["value"] == 0.0
        checked += len(clean)
    # conversations the registry itself asks different replies for are rare; everything else holds
    assert perfect >= 270 and zero >= 270 and checked >= 3000, (perfect, zero, checked)
    print(f"\nregistry evals: {perfect} of {len(keyed)} at accuracy 1.0 answering the ideal ({dict(by_class)}), "
          f"{zero} of {len(names) - len(keyed)} at 0.0 answering a wrong string; samples checked {checked}")


def test_model_graded_registry_eval(evalkit, start_server, oai_registry, tmp_path):
    """closedqa (cot_classify, Y/N) from the registry: the grader's last line decides; fact has no scores."""
    server = start_server([{"model": "judge", "match": "[Criterion]", "reply": "It is correct.\nY"}],
                          default_reply="The answer is 42.")
    res = evalkit("run", "--registry", str(oai_registry), "coqa-closedqa-correct", "--model", "openai/m",
                  "--grader-model", "openai/judge", "--base-url", server.url, "--limit", "6", "--json", "--quiet",
                  "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["metrics"]["score"]["value"] == 1.0 and s["metrics"]["choice/Y"]["value"] == 1.0 and s["grader"]["invalid"] == 0
    rec = [r for r in read_jsonl(s["log"]) if r["type"] == "sample"][0]
    assert "The answer is 42." in rec["grader"]["messages"][-1]["content"] and rec["grader"]["eval_type"] == "cot_classify"
    # fact: no choice_scores in the registry, so only the class rates are reported
    res = evalkit("run", "--registry", str(oai_registry), "coqa-fact-expl", "--model", "openai/m", "--grader-model",
                  "openai/m", "--base-url", server.url, "--limit", "3", "--json", "--quiet", "--log-dir", str(tmp_path / "l2"))
    # every grade invalid: nothing was scored, exit 1 (issue 24; this was exit 0 with scored 3)
    assert res.returncode == 1 and "coqa-fact-expl: no sample was scored (0 errors, 3 invalid grades" in res.stderr
    s = json.loads(res.stdout)
    assert s["metrics"]["score"]["value"] is None and s["metrics"]["choice/invalid"]["value"] == 1.0
    assert (s["scored"], s["invalid_grades"]) == (0, 3)


def test_every_model_graded_registry_eval_runs(evalkit, start_server, oai_registry, tmp_path):
    """All 55 supported ModelBasedClassify evals in one run. The grader always answers "Y": valid
    exactly for the rubrics whose choices include Y (scored by their choice_scores), invalid (and
    counted, not scored) for the others, which therefore exit 1: nothing of theirs was scored."""
    inv = inventory(evalkit, oai_registry)
    names = sorted(n for n, r in inv.items() if r["supported"] and "ModelBased" in r["class"])
    assert len(names) == 55
    specs = {}
    for f in (oai_registry / "modelgraded").glob("*.yaml"):
        specs.update(yaml.safe_load(f.read_text()))
    entries = {}
    for f in (oai_registry / "evals").rglob("*.yaml"):
        entries.update({k: v for k, v in (yaml.load(f.read_text(), Loader=yaml.CSafeLoader) or {}).items()
                        if isinstance(v, dict)})
    server = start_server([{"model": "judge", "match": "\"", "reply": "Y"}], default_reply="Some reply.")  # any grader prompt quotes its choices
    res = evalkit("run", "--registry", str(oai_registry), *names, "--model", "openai/m", "--grader-model",
                  "openai/judge", "--base-url", server.url, "--limit", "2", "--json", "--quiet",
                  "--log-dir", str(tmp_path / "logs"), timeout=1800)
    assert res.returncode == 1, res.stderr[-2000:]            # was 0 (issue 24): some evals scored nothing
    runs = {s["eval"]: s for s in map(json.loads, res.stdout.splitlines())}
    assert sorted(runs) == names
    valid_evals = 0
    for name in names:
        target = entries[name]
        while "class" not in target:
            target = entries[target["id"]]
        spec = specs[target["args"]["modelgraded_spec"].strip()]
        choices = list(spec["choice_strings"]) if isinstance(spec["choice_strings"], str) else spec["choice_strings"]
        s = runs[name]
        assert s["errors"] == 0 and s["scored"] + s["invalid_grades"] == 2, name
        if "Y" in choices:
            valid_evals += 1
            assert s["grader"]["invalid"] == 0 and s["metrics"]["choice/Y"]["value"] == 1.0, name
            scores = spec.get("choice_scores")
            if isinstance(scores, dict):
                assert s["metrics"]["score"]["value"] == scores["Y"], name
        else:
            assert s["grader"]["invalid"] == 2 and s["metrics"]["score"]["n"] == 0 and s["scored"] == 0, name
            assert f"evalkit: {name}: no sample was scored (0 errors, 2 invalid grades" in res.stderr, name
    assert valid_evals >= 10


def test_unsupported_and_sets(evalkit, start_server, oai_registry, tmp_path):
    res = evalkit("run", "--registry", str(oai_registry), "theory_of_mind", "--model", "openai/m",
                  "--base-url", "http://127.0.0.1:9/v1")
    assert res.returncode == 2
    assert "not supported: evals.elsuite.basic.match_with_solvers:MatchWithSolvers" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    server = start_server([], default_reply="1")
    sets = yaml.safe_load((oai_registry / "eval_sets" / "chinese-numbers.yaml").read_text())["chinese-numbers"]["evals"]
    res = evalkit("run", "--registry", str(oai_registry), "chinese-numbers", "--model", "openai/m", "--base-url",
                  server.url, "--limit", "2", "--json", "--quiet", "--log-dir", str(tmp_path / "logs"))
    assert res.returncode == 0, res.stderr
    assert sorted(json.loads(x)["eval"] for x in res.stdout.splitlines()) == sorted(sets)

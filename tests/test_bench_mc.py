"""GPQA, BIG-Bench Hard and SimpleQA on their real data, through the CLI against the test server.

Each answer key is built here from the raw files (zipfile, csv, json, random) independently of
evalkit's loaders: GPQA's option order is recomputed from simple-evals' published recipe
(`random.Random(0)`, `sample(range(4), 4)` per row, repeat after repeat), every reply is written in a
format real models use, and the expected outcome of each format follows from the authors' rule
(simple-evals' "Answer: X" regex; BBH's exact match after "So the answer is"; SimpleQA's grades).
"""

from __future__ import annotations

import csv
import io
import json
import random
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import identifiable, one_line_error
from evalkit.datasets.load import load_samples
from evalkit.specs.registry import Registry

DEFAULT = "???"
PASSWORD = b"deserted-untie-orchid"
GPQA_TEMPLATE = ("Answer the following multiple choice question. The last line of your response should be of the "
                 "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by "
                 "step before answering.\n\n{Question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}")


def run(evalkit, server, name: str, *args: str) -> dict:
    res = evalkit("run", name, "--model", "openai/m", "--base-url", server.url, "--json", "--quiet", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def samples_of(summary: dict) -> dict[str, dict]:
    """The log's sample lines (split at \\n only: GPQA's text holds other Unicode line breaks)."""
    lines = Path(summary["log"]).read_text(encoding="utf-8").split("\n")
    return {r["id"]: r for r in map(json.loads, filter(None, lines)) if r["type"] == "sample"}


# ----------------------------------------------------------------------------- GPQA

def gpqa_rows(data_dir: Path, subset: str) -> list[dict]:
    raw = zipfile.ZipFile(data_dir / "gpqa" / "dataset.zip").read(f"dataset/gpqa_{subset}.csv", pwd=PASSWORD)
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


def simple_evals_orders(rows: list[dict], repeats: int) -> list[list[tuple[list[str], str]]]:
    """Per repeat, per row: the options as simple-evals shows them and the correct letter."""
    rng = random.Random(0)
    out = []
    for _ in range(repeats):
        this = []
        for row in rows:
            opts = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
            shown = [opts[i] for i in rng.sample(range(4), 4)]
            this.append((shown, "ABCD"[shown.index(row["Correct Answer"])]))
        out.append(this)
    return out


# Reply formats and what simple-evals' regex makes of them: (reply, outcome) with outcome right,
# wrong or unparsed. `g` is the correct letter, `w` a wrong one.
GPQA_FORMATS = [
    (lambda g, w: f"Step by step...\nAnswer: {g}", "right"),
    (lambda g, w: f"Reasoning.\n\nAnswer: ${g}$", "right"),
    (lambda g, w: f"answer:{g}", "right"),                                   # any case, no space
    (lambda g, w: f"Answer: {g} because the energy is conserved.", "right"),  # trailing text
    (lambda g, w: f"Answer: {w}\nOn reflection...\nAnswer: {g}", "wrong"),   # the first match counts
    (lambda g, w: f"Answer: {w}", "wrong"),
    (lambda g, w: f"({g})", "unparsed"),                                     # no "Answer:" at all
    (lambda g, w: f"**Answer:** {g}", "unparsed"),                           # markdown breaks the pattern
    (lambda g, w: f"The answer is ({g}).", "unparsed"),
]


def test_gpqa_diamond_repeats_each_reshuffled_as_simple_evals(evalkit, start_server, data_dir):
    rows = gpqa_rows(data_dir, "diamond")
    assert len(rows) == 198
    orders = simple_evals_orders(rows, 2)
    prompts = [GPQA_TEMPLATE.format(Question=row["Question"], A=s[0], B=s[1], C=s[2], D=s[3])
               for rep in orders for row, (s, _) in zip(rows, rep)]
    needles = [f"{row['Question']}\n\nA) {s[0]}\nB) {s[1]}\nC) {s[2]}" for rep in orders for row, (s, _) in zip(rows, rep)]
    ok = identifiable(needles, prompts)
    key, expected, counts = [], {}, defaultdict(int)
    for r, rep in enumerate(orders):
        for i, (row, (shown, gold)) in enumerate(zip(rows, rep)):
            needle = f"{row['Question']}\n\nA) {shown[0]}\nB) {shown[1]}\nC) {shown[2]}"
            if needle not in ok:
                expected[f"diamond/{row['Record ID']}#{r}"] = "unparsed"
                continue
            fmt, outcome = GPQA_FORMATS[(i + r) % len(GPQA_FORMATS)]
            key.append({"match": needle, "reply": fmt(gold, "ABCD"[("ABCD".index(gold) + 1) % 4])})
            expected[f"diamond/{row['Record ID']}#{r}"] = outcome
    assert len(ok) > 0.9 * len(needles)     # a question shown twice in the same order is left out
    for outcome in expected.values():
        counts[outcome] += 1
    server = start_server(key, default_reply=DEFAULT)
    s = run(evalkit, server, "gpqa", "--samples", "2", "--log-prompts")
    assert s["n"] == s["scored"] == 396 and s["unparsed"] == counts["unparsed"]
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(counts["right"] / 396, abs=1e-6)
    recs = samples_of(s)
    assert {k: ("unparsed" if r["parsed"] is False else "right" if r["score"] == 1.0 else "wrong")
            for k, r in recs.items()} == expected
    # The prompt is simple-evals' to the character, and each repeat shows its own permutation.
    first = rows[0]
    for r in (0, 1):
        shown, gold = orders[r][0]
        rec = recs[f"diamond/{first['Record ID']}#{r}"]
        assert rec["messages"] == [{"role": "user", "content": GPQA_TEMPLATE.format(
            Question=first["Question"], A=shown[0], B=shown[1], C=shown[2], D=shown[3])}]
        assert rec["target"] == gold
    assert sum(orders[0][i][0] != orders[1][i][0] for i in range(198)) > 150


def test_gpqa_subsets_and_a_broken_zip(evalkit, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(data_dir))
    reg = Registry.default()
    loaded = {name: load_samples(reg.resolve(name)) for name in ("gpqa", "gpqa.main", "gpqa.extended")}
    for name, n in (("gpqa", 198), ("gpqa.main", 448), ("gpqa.extended", 546)):
        assert len(loaded[name]) == n and len({x.id for x in loaded[name]}) == n
    assert {x.group for x in loaded["gpqa"]} == {"Physics", "Chemistry", "Biology"}
    main = {x.id: x for x in loaded["gpqa.main"]}
    rows = gpqa_rows(data_dir, "main")
    (shown, gold), = [simple_evals_orders(rows[:1], 1)[0][0]]
    assert main[f"main/{rows[0]['Record ID']}"].choices == tuple(shown) and main[f"main/{rows[0]['Record ID']}"].answer == gold
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "dataset.zip").write_bytes(b"PK\x03\x04 not really a zip")
    spec = tmp_path / "g.yaml"
    spec.write_text("gpqa-bad:\n  extends: gpqa\n  dataset: {path: ./bad}\n")
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"))
    assert "bad/dataset.zip" in msg and "cannot read dataset/gpqa_diamond.csv" in msg
    # one byte of the encrypted Diamond member flipped: the decompressor's complaint, in one line
    src = (data_dir / "gpqa" / "dataset.zip").read_bytes()
    info = zipfile.ZipFile(data_dir / "gpqa" / "dataset.zip").getinfo("dataset/gpqa_diamond.csv")
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5000
    (tmp_path / "bad" / "dataset.zip").write_bytes(src[:at] + bytes([src[at] ^ 0xFF]) + src[at + 1:])
    msg = one_line_error(evalkit("run", str(spec), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1"))
    assert "cannot read dataset/gpqa_diamond.csv" in msg and "decompressing" in msg


# ----------------------------------------------------------------------------- BBH

def bbh_tasks(data_dir: Path) -> dict[str, list[dict]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8"))["examples"]
            for p in sorted((data_dir / "bbh" / "bbh").glob("*.json"))}


# (reply for target t and a wrong target w, outcome): the text after the last "the answer is",
# final period dropped, must equal the target exactly.
BBH_FORMATS = [
    (lambda t, w: f"Let us see. So the answer is {t}.", "right"),
    (lambda t, w: f"Step one.\nStep two.\nSo the answer is {t}", "right"),           # no period
    (lambda t, w: f"So the answer is {t}.\nI hope this helps.", "right"),             # trailing line
    (lambda t, w: f"So the answer is {w}.\nWait. the answer is not {w}. so the answer is {t}.", "right"),  # the last
    (lambda t, w: f"So the answer is {w}.", "wrong"),
    (lambda t, w: f"So the answer is {t}. Because of the rule above.", "wrong"),      # same-line text
    (lambda t, w: f"So the answer is {t.swapcase()}." if t.swapcase() != t else f"So the answer is **{t}**.",
     "wrong"),                                                                        # case counts; no markdown
    (lambda t, w: f"{t}", "unparsed"),                                                # no marker
]


def test_bbh_all_tasks_exact_match_and_macro_average(evalkit, start_server, data_dir):
    tasks = bbh_tasks(data_dir)
    assert len(tasks) == 27 and sum(map(len, tasks.values())) == 6511
    items = [(t, i, ex) for t, exs in tasks.items() for i, ex in enumerate(exs)]
    asked = [f"{ex['input']}\nA: Let's think step by step." for _, _, ex in items]   # what follows the last "Q: "
    ok = identifiable(asked, asked)
    key, expected = [], {}
    for n, ((task, i, ex), needle) in enumerate(zip(items, asked)):
        if needle not in ok:
            expected[f"{task}/{i}"] = "unparsed"
            continue
        t = ex["target"]
        w = next(e["target"] for e in tasks[task] if e["target"] != t)
        fmt, outcome = BBH_FORMATS[n % len(BBH_FORMATS)]
        key.append({"match": needle, "reply": fmt(t, w)})
        expected[f"{task}/{i}"] = outcome
    assert len(key) > 6300
    server = start_server(key, default_reply=DEFAULT, tail_after="\n\nQ: ")
    s = run(evalkit, server, "bbh", "--limit", "700", "--log-prompts")
    recs = samples_of(s)
    assert s["n"] == s["scored"] == 700 == len(recs)
    got = {k: ("unparsed" if r.get("parsed") is False else "right" if r["score"] == 1.0 else "wrong") for k, r in recs.items()}
    assert got == {k: expected[k] for k in recs}
    by_task = defaultdict(list)
    for k in recs:
        by_task[k.split("/")[0]].append(expected[k] == "right")
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(sum(v for vs in by_task.values() for v in vs) / 700, abs=1e-6)
    macro = sum(sum(v) / len(v) for v in by_task.values()) / len(by_task)
    assert s["metrics"]["macro_accuracy"]["value"] == pytest.approx(macro, abs=1e-6)
    assert s["metrics"]["macro_accuracy"]["groups"] == len(by_task) > 20
    assert {g: st["n"] for g, st in s["groups"].items()} == {g: len(v) for g, v in by_task.items()}
    # The prompt: the task's published file without its two header lines, then the question.
    some = next(iter(recs.values()))
    task, i = some["id"].split("/")
    published = (data_dir / "bbh" / "cot-prompts" / f"{task}.txt").read_text(encoding="utf-8")
    body = published.split("\n-----\n", 1)[1].strip()
    assert some["messages"] == [{"role": "user", "content": body + "\n\nQ: " + tasks[task][int(i)]["input"]
                                 + "\nA: Let's think step by step."}]
    assert server.requests()[-1]["body"]["stop"] == ["\n\nQ:"]


# ----------------------------------------------------------------------------- SimpleQA

def simpleqa_rows(data_dir: Path) -> list[dict]:
    with open(data_dir / "simpleqa" / "simple_qa_test_set.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# What the grader answers for sample i, and the grade that means (None: invalid).
GRADER_REPLIES = [("A", "A"), ("B", "B"), ("C", "C"), (" C.", "C"), ("A\n", "A"), ("I cannot grade this.", None),
                  ("B", "B"), ("A", "A")]


def test_simpleqa_graded_with_the_published_rubric(evalkit, start_server, data_dir):
    rows = simpleqa_rows(data_dir)
    assert len(rows) == 4326
    ok = identifiable([r["problem"] for r in rows], [r["problem"] for r in rows])
    key, grade_of = [], {}
    for i, r in enumerate(rows):
        if r["problem"] not in ok:
            continue
        reply, grade = GRADER_REPLIES[i % len(GRADER_REPLIES)]
        key.append({"model": "m", "match": r["problem"], "reply": f"REPLY-{i} my answer"})
        key.append({"model": "judge", "match": f"Predicted answer: REPLY-{i} my answer\n", "reply": reply})
        grade_of[f"simpleqa/{i}"] = grade
    server = start_server(key, default_reply=DEFAULT)
    s = run(evalkit, server, "simpleqa", "--grader-model", "openai/judge", "--limit", "120", "--fail-on-error", "0.2")
    recs = samples_of(s)
    assert len(recs) == 120 and set(recs) <= set(grade_of)
    grades = [grade_of[k] for k in recs]
    valid = [g for g in grades if g is not None]
    a, b, c = valid.count("A"), valid.count("B"), valid.count("C")
    m = s["metrics"]
    assert s["primary_metric"] == "correct" and s["unparsed"] == grades.count(None) > 0
    assert m["correct"]["value"] == pytest.approx(a / len(valid), abs=1e-6)
    assert m["incorrect"]["value"] == pytest.approx(b / len(valid), abs=1e-6)
    assert m["not_attempted"]["value"] == pytest.approx(c / len(valid), abs=1e-6)
    given = a / (a + b)
    assert m["accuracy_given_attempted"]["value"] == pytest.approx(given, abs=1e-6) and m["accuracy_given_attempted"]["n"] == a + b
    correct = a / len(valid)
    assert m["f1"]["value"] == pytest.approx(2 * given * correct / (given + correct), abs=1e-6)
    lo, hi = m["f1"]["ci95"]
    assert lo < m["f1"]["value"] < hi
    assert m["choice/invalid"]["value"] == pytest.approx(grades.count(None) / 120, abs=1e-6)
    # The grader saw the published prompt as written: question, gold target, reply, no instruction added.
    one = next(r for k, r in recs.items() if grade_of[k] == "A")
    i = int(one["id"].split("/")[1])
    text = one["grader"]["messages"][0]["content"]
    assert len(one["grader"]["messages"]) == 1 and text.startswith("Your job is to look at a question, a gold target")
    assert f"```\nQuestion: {rows[i]['problem']}\nGold target: {rows[i]['answer']}\nPredicted answer: REPLY-{i} my answer\n```" in text
    assert text.endswith('Just return the letters "A", "B", or "C", with no text around it.')
    # The summary of a log (a report, a resumed run) gives the same figures, F1 included.
    again = run(evalkit, server, "simpleqa", "--grader-model", "openai/judge", "--limit", "120", "--fail-on-error", "0.2")
    assert again["requests"]["resumed_samples"] == 120 and again["metrics"] == m


# ----------------------------------------------------------------------------- data pull

def test_pull_from_their_homes_verified_and_run_from_the_cache(evalkit, data_dir, tmp_path, start_server):
    """`data pull` against a local server in each real home's layout (raw GitHub at the pinned
    commits, OpenAI's blob storage): byte-identical files, licenses listed, a tampered file refused."""
    import hashlib

    import yaml

    from data_mirror import Mirror

    mirror = Mirror(data_dir).start()
    try:
        env = {"EVALKIT_DATA_DIR": "", "EVALKIT_DATA_MIRROR": mirror.url, "EVALKIT_CACHE_DIR": str(tmp_path / "dl"),
               "EVALKIT_REGISTRY": str(mirror.override_registry(tmp_path / "registry"))}
        cat = yaml.safe_load((Path(__file__).resolve().parent.parent / "registry/datasets.yaml").read_text())
        zip_url = cat["gpqa"]["files"]["dataset.zip"]["url"]
        assert zip_url.startswith("https://raw.githubusercontent.com/idavidrein/gpqa/56686c06f5e19865c153de0fdb11be3890014df7/")
        assert cat["simpleqa"]["files"]["simple_qa_test_set.csv"]["url"] == \
            "https://openaipublic.blob.core.windows.net/simple-evals/simple_qa_test_set.csv"
        mirror.tamper[mirror.path_of(zip_url)] = (data_dir / "gpqa" / "dataset.zip").read_bytes()[:-1] + b"!"
        msg = one_line_error(evalkit("data", "pull", "gpqa", env=env))
        assert "gpqa" in msg and "dataset.zip" in msg and "sha256" in msg
        assert not (tmp_path / "dl" / "data" / "gpqa").exists()
        mirror.tamper.clear()
        res = evalkit("data", "pull", "gpqa", "bbh", "simpleqa", env=env)
        assert res.returncode == 0, res.stderr
        for name in ("gpqa", "bbh", "simpleqa"):
            assert f"{name}: downloaded and verified" in res.stdout
            files = cat[name]["files"]
            assert len(files) == {"gpqa": 1, "bbh": 56, "simpleqa": 2}[name]
            for rel, f in files.items():
                got = (tmp_path / "dl" / "data" / name / rel).read_bytes()
                assert hashlib.sha256(got).hexdigest() == f["sha256"] == hashlib.sha256((data_dir / name / rel).read_bytes()).hexdigest()
        assert not list((tmp_path / "dl" / "data" / "gpqa").glob("*.csv"))           # never unpacked
        rows = {r["name"]: r for r in map(json.loads, evalkit("data", "list", "--json", env=env).stdout.splitlines())}
        assert (rows["gpqa"]["license"], rows["bbh"]["license"], rows["simpleqa"]["license"]) == ("CC BY 4.0", "MIT", "MIT")
        assert rows["gpqa"]["state"] == rows["bbh"]["state"] == rows["simpleqa"]["state"] == "cached"
        server = start_server([], default_reply="Answer: A")
        s = run_env(evalkit, server, env, "gpqa.main", "--limit", "10")
        assert s["n"] == s["scored"] == 10 and s["unparsed"] == 0
    finally:
        mirror.stop()


def run_env(evalkit, server, env: dict, name: str, *args: str) -> dict:
    res = evalkit("run", name, "--model", "openai/m", "--base-url", server.url, "--json", "--quiet", *args, env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


# ----------------------------------------------------------------------------- the parsing rules, reply by reply

@pytest.fixture(scope="module")
def specs():
    reg = Registry.default()
    return {name: reg.resolve(name) for name in ("gpqa", "bbh.navigate")}


@pytest.mark.parametrize("reply, letter", [
    ("Answer: B", "B"), ("answer : c", None), ("ANSWER:\tD", "D"), ("Answer: $A$", "A"), ("Answer:B.", "B"),
    ("Answer: Because of symmetry, B", "B"),          # simple-evals' pattern reads the B of "Because"
    ("Answer: C\nAnswer: D", "C"),                    # re.search: the first
    ("Final Answer: (B)", None), ("The answer is B", None), ("B", None), ("", None),
    ("x" * 100_000 + "\nAnswer: A", "A"),            # long replies are read in linear time
])
def test_gpqa_reads_the_letter_as_simple_evals(specs, reply, letter):
    from evalkit.core.sample import Sample
    from evalkit.scoring.choice import score_letter

    spec = specs["gpqa"]
    got = score_letter(reply, Sample(id="q", question="?", answer="B", choices=("w", "x", "y", "z")),
                       spec.scoring.labels, spec.scoring.extract)
    assert got.extracted == letter and got.parsed is (letter is not None) and got.value == float(letter == "B")


@pytest.mark.parametrize("reply, answer", [
    ("So the answer is Yes.", "Yes"), ("So the answer is Yes", "Yes"), ("so THE ANSWER IS No.", "No"),
    ("So the answer is (B).\nQ: more", "(B)"), ("So the answer is   ] ) .", "] )"),
    ("the answer is No. So the answer is Yes.", "Yes"), ("So the answer is Yes. I think.", "Yes. I think"),
    ("So the answer is 1.5.", "1.5"), ("So the answer is -11520.", "-11520"), ("Yes", None),
])
def test_bbh_reads_after_the_last_marker(specs, reply, answer):
    from evalkit.scoring.text import extract_answer

    assert extract_answer(reply, specs["bbh.navigate"].scoring.extract) == answer


def test_simpleqa_f1_is_simple_evals():
    from evalkit.scoring.simpleqa import f1_of

    assert f1_of(0.0, 0.0) == 0.0 and f1_of(0.5, 0.5) == 0.5
    assert f1_of(0.3, 0.75) == pytest.approx(2 * 0.3 * 0.75 / 1.05)

"""MATH, MATH-500, AIME and MGSM on their real data, end to end through the CLI and the test server.

Each answer key is built here from the raw files (json/csv alone, with this file's own reading of
the last box), independently of evalkit's loaders, in the forms real models answer in: boxed,
"Answer: X", "The final answer is", trailing text, several boxes, LaTeX variants, an unclosed box,
AIME's leading zeros and out-of-range integers, MGSM's answer words and thousands commas. The
expected score follows from the key exactly.
"""

from __future__ import annotations

import csv
import json
import re

import pytest

from conftest import identifiable, one_line_error, read_jsonl

DEFAULT = "I cannot solve this."
LANGS = "bn de en es fr ja ru sw te th zh".split()
WORD = {"en": "Answer", "bn": "উত্তর", "de": "Antwort", "es": "Respuesta", "fr": "Réponse", "ja": "答え",
        "ru": "Ответ", "sw": "Jibu", "te": "సమాధానం", "th": "คำตอบ", "zh": "答案"}


def run(evalkit, start_server, name: str, answers: list[dict], *args: str) -> dict:
    server = start_server(answers, default_reply=DEFAULT)
    res = evalkit("run", name, "--model", "openai/m", "--base-url", server.url, "--json", "--quiet", *args)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def last_box(solution: str) -> str:
    start = solution.rindex("\\boxed")
    depth, i = 0, solution.index("{", start)
    for j in range(i, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return solution[i + 1:j].strip()
    raise AssertionError(solution)


def math_reply(i: int, gold: str) -> tuple[str, bool]:
    """A reply in the i-th of five forms, and whether it is right."""
    wrong = "31415926" if gold != "31415926" else "27"
    frac = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", gold)
    if i % 5 == 0:
        return f"After checking, the result is \\boxed{{{wrong}}}.", False
    if i % 5 == 1:
        plain = f"{frac[1]}/{frac[2]}" if frac else gold
        return (f"So we are done.\n\nAnswer: ${plain}$" if "\n" not in gold else f"Done: \\boxed{{{gold}}}"), True
    if i % 5 == 2:
        variant = gold.replace("\\frac", "\\dfrac").replace(",", ", ")
        return f"Final Answer: The final answer is ${variant}$. I hope it is correct.", True
    if i % 5 == 3:
        return f"A first try gives \\boxed{{{wrong}}}, but that is off.\nCorrected: \\boxed{{{gold}}}. Done, as shown above.", True
    return f"Therefore the answer is \\boxed{{{gold}", False          # the box never closes


def math_key(problems: list[tuple[str, str]]) -> tuple[list[dict], int, int]:
    """(answer key, right, keyed) for (problem, gold) pairs; problems the server cannot tell apart
    get its default reply (unparsed, wrong)."""
    ok = identifiable([p for p, _ in problems], [p for p, _ in problems])
    answers, right = [], 0
    for i, (problem, gold) in enumerate(problems):
        if problem in ok:
            reply, good = math_reply(i, gold)
            answers.append({"match": problem, "reply": reply})
            right += good
    return answers, right, len(answers)


def test_math500_scores_what_the_key_implies(evalkit, start_server, data_dir):
    rows = [json.loads(line) for line in (data_dir / "math500" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 500
    answers, right, keyed = math_key([(r["problem"], r["answer"]) for r in rows])
    s = run(evalkit, start_server, "math500", answers)
    assert keyed == 500 and s["scored"] == 500
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(right / 500, abs=1e-6)
    assert s["unparsed"] == 500 // 5 and {g: m["n"] for g, m in s["groups"].items()} == {
        "algebra": 124, "intermediate_algebra": 97, "prealgebra": 82, "number_theory": 62, "precalculus": 56,
        "geometry": 41, "counting_and_probability": 38}


def logged(summary: dict) -> list[str]:
    return [r["id"] for r in read_jsonl(summary["log"]) if r["type"] == "sample"]


def test_math_level_subset_from_the_release_files(evalkit, start_server, data_dir):
    files = sorted((data_dir / "math" / "test").glob("*/*.json"))
    assert len(files) == 5000
    recs = {f"{p.parent.name}/{p.stem}": json.loads(p.read_text(encoding="utf-8")) for p in files}
    level1 = {k: (r["problem"], last_box(r["solution"])) for k, r in recs.items() if r["level"] == "Level 1"}
    assert len(level1) == 437
    ok = identifiable([p for p, _ in level1.values()], [p for p, _ in level1.values()])
    answers, good = [], {}
    for i, (sid, (problem, gold)) in enumerate(level1.items()):
        reply, good[sid] = math_reply(i, gold) if problem in ok else (DEFAULT, False)
        if problem in ok:
            answers.append({"match": problem, "reply": reply})
    s = run(evalkit, start_server, "math.level-1", answers, "--limit", "150")
    ids = logged(s)
    assert s["scored"] == 150 and len(set(ids)) == 150 and set(ids) <= set(level1)
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(sum(good[i] for i in ids) / 150, abs=1e-6)


def test_math_prompt_is_simple_evals_zero_shot(evalkit, start_server):
    server = start_server([], default_reply="Answer: 2")
    res = evalkit("run", "math.algebra", "--model", "openai/m", "--base-url", server.url, "--limit", "1",
                  "--log-prompts", "--json")
    prompt = [r for r in read_jsonl(json.loads(res.stdout)["log"]) if r["type"] == "sample"][0]["messages"][-1]["content"]
    assert prompt.startswith("Solve the following math problem step by step. The last line of your response ")
    assert prompt.endswith('Remember to put your answer on its own line after "Answer:", and you do not need to use a \\boxed command.')


AIME_FORMS = [  # (reply for gold g, right?)
    (lambda g: f"Thus the count is $\\boxed{{{g:03d}}}$.", True),                 # AIME's leading zeros
    (lambda g: f"Putting it together.\n\n**Answer:** {g}", True),
    (lambda g: f"\\boxed{{{g + 1000}}}", False),                                    # not 0-999: unparsed
    (lambda g: f"We get \\boxed{{\\text{{{g}}}}} after all.", True),
    (lambda g: f"The final answer is {(g + 1) % 1000}.", False),
    (lambda g: f"\\boxed{{{g}.5}}", False),                                         # not an integer: unparsed
]


def test_aime_integers(evalkit, start_server, data_dir):
    answers, right, n, unparsed = [], 0, 0, 0
    for contest in ("aime_2024_I", "aime_2024_II", "aime_2025_I", "aime_2025_II"):
        with open(data_dir / "aime" / contest / "answers.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                problem = (data_dir / "aime" / contest / "problems" / f"{row['id']}.tex").read_text(encoding="utf-8").strip()
                form, good = AIME_FORMS[n % len(AIME_FORMS)]
                answers.append({"match": problem, "reply": form(int(row["answer"]))})
                right, unparsed, n = right + good, unparsed + (n % len(AIME_FORMS) in (2, 5)), n + 1
    s = run(evalkit, start_server, "aime", answers)
    assert n == 60 and s["scored"] == 60 and s["unparsed"] == unparsed == 20
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(right / 60, abs=1e-6)
    assert sorted(s["groups"]) == ["2024-I", "2024-II", "2025-I", "2025-II"]
    one = run(evalkit, start_server, "aime.2025-II", answers)
    assert one["scored"] == 15 and set(one["groups"]) == {"2025-II"}


def mgsm_reply(i: int, lang: str, gold: int) -> tuple[str, bool]:
    w = WORD[lang]
    forms = [(f"2 + 3 = 5.\n{w}: {gold}", True), (f"{w}: {gold:,}", True), (f"{w}: {gold}.0", True),
             (f"{w}: {gold + 1}", False), (f"= {gold}", False)]
    return forms[i % len(forms)]


def test_mgsm_per_language_and_average(evalkit, start_server, data_dir):
    answers, good = [], {}
    for lang in LANGS:
        rows = [line.split("\t") for line in (data_dir / "mgsm" / f"mgsm_{lang}.tsv").read_text(encoding="utf-8").splitlines()]
        assert len(rows) == 250
        ok = identifiable([q for q, _ in rows], [q for q, _ in rows])
        for i, (q, a) in enumerate(rows):
            reply, right = mgsm_reply(i + LANGS.index(lang), lang, int(a.replace(",", "")))
            good[f"{lang}/{i}"] = right and q in ok
            if q in ok:
                answers.append({"match": q, "reply": reply})
    s = run(evalkit, start_server, "mgsm", answers, "--limit", "550")
    ids = logged(s)
    assert s["scored"] == 550 and len(set(ids)) == 550
    per_lang = {lang: [good[i] for i in ids if i.startswith(f"{lang}/")] for lang in LANGS}
    for lang, got in per_lang.items():
        assert s["groups"][lang]["n"] == len(got) and s["groups"][lang]["value"] == pytest.approx(sum(got) / len(got), abs=1e-6), lang
    macro = sum(sum(g) / len(g) for g in per_lang.values()) / 11
    assert s["metrics"]["macro_accuracy"]["value"] == pytest.approx(macro, abs=1e-6)
    assert s["metrics"]["accuracy"]["value"] == pytest.approx(sum(good[i] for i in ids) / 550, abs=1e-6)
    one = run(evalkit, start_server, "mgsm.zh", answers, "--limit", "50")
    assert set(one["groups"]) == {"zh"} and one["metrics"]["accuracy"]["value"] == pytest.approx(
        sum(good[i] for i in logged(one)) / 50, abs=1e-6)


@pytest.mark.parametrize("name, rel, body, where", [
    ("mgsm.de", "mgsm/mgsm_de.tsv", "Wie viele?\t12\nkaputt ohne Tab\n", "mgsm_de.tsv:2"),
    ("aime.2024-I", "aime/aime_2024_I/answers.csv", "id,answer\n1,204\n2,twenty\n", "answers.csv:3"),
    ("math500", "math500/test.jsonl", '{"problem": "p", "answer": "1", "subject": "Algebra", "unique_id": "test/algebra/1.json"}\n{"problem": 5}\n', "test.jsonl:2"),
    ("math.algebra", "math/test/algebra/1.json", '{"problem": "p", "level": "Level 1", "type": "Algebra", "solution": "no box"}', "algebra/1.json"),
])
def test_broken_data_is_one_line_naming_the_file(evalkit, start_server, tmp_path, name, rel, body, where):
    root = tmp_path / "data"
    (root / rel).parent.mkdir(parents=True)
    (root / rel).write_text(body, encoding="utf-8")
    server = start_server([], default_reply="Answer: 1")
    res = evalkit("run", name, "--model", "openai/m", "--base-url", server.url, env={"EVALKIT_DATA_DIR": str(root)})
    msg = one_line_error(res)
    assert where in msg, msg
    assert server.stats().get("requests", 0) == 0

"""IFEval on its real data: the 25 checkers against the authors' own code, and the whole run
through the CLI against the test server.

The reference is the authors' checkers as the PyPI package lm-eval ships them, run offline
(tests/ifeval_reference.py); the replies come from tests/ifeval_replies.py, built from each
record to sit on its instructions' edges. Every expected number below is the reference's verdict,
never evalkit's own.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict

import pytest

import ifeval_reference
import ifeval_replies
from conftest import read_jsonl
from evalkit.loaders.ifeval import _sample
from evalkit.scoring.ifeval import instructions_of, judge

KINDS = 25


@pytest.fixture(scope="module")
def records(data_dir) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "ifeval" / "input_data.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return ifeval_reference.load(tmp_path_factory.mktemp("nltk_data"))


def deterministic(iid: str, kw: dict) -> bool:
    """The authors' code draws a random letter when the letter asked for is not a-z (keys 1122
    and 1129 ask for "#" and "!"): no fixed verdict to compare with there."""
    return not (iid.endswith("letter_frequency") and not ("a" <= kw["letter"].lower() <= "z"))


def test_every_record_loads_as_published(records, data_dir):
    from evalkit.loaders import ifeval

    samples = ifeval.load(None, data_dir / "ifeval", "test")
    assert len(samples) == 541 and [s.id for s in samples] == [str(r["key"]) for r in records]
    assert all(s.question == r["prompt"] for s, r in zip(samples, records))
    pairs = [p for s in samples for p in instructions_of(s.answer)]
    assert len(pairs) == 834 and len({iid for iid, _ in pairs}) == KINDS


def test_checkers_agree_with_the_authors_on_generated_replies(records, reference):
    """2,200 generated replies, every instruction of their record judged strictly and loosely by
    both; each of the 25 kinds is judged both ways (followed, not followed) many times."""
    rng = random.Random(25)
    seen: dict[str, Counter] = defaultdict(Counter)
    differ = []
    for i in range(2200):
        rec = records[i % len(records)]
        text = ifeval_replies.reply(rec, rng)
        theirs = ifeval_reference.verdicts(reference, rec, text)
        ours = judge(instructions_of(_sample(rec).answer), text)
        for j, (iid, kw) in enumerate(zip(rec["instruction_id_list"], rec["kwargs"])):
            if not deterministic(iid, kw):
                continue
            want, got = (theirs[0][j], theirs[1][j]), (ours[0][j], ours[1][j])
            seen[iid][want] += 1
            if want != got:
                differ.append((rec["key"], iid, text, want, got))
    assert differ == []
    assert len(seen) == KINDS
    for iid, outcomes in seen.items():
        assert outcomes[(True, True)] >= 2 and outcomes[(False, False)] >= 20, (iid, outcomes)
    loosened = {iid for iid, o in seen.items() if o[(False, True)]}
    assert len(loosened) >= 15, loosened        # the loose variants change many kinds' verdicts


def test_the_authors_random_letters_are_a_fixed_character_here(records):
    """Where the authors draw a random letter ("#" asked for), evalkit counts the character asked."""
    rec = next(r for r in records if r["key"] == 1122)           # lowercase, at least 4 '#'
    pairs = instructions_of(_sample(rec).answer)
    assert judge(pairs, "loving the new drop #summer #vibes #icecream #treat") == ([True, True], [True, True])
    assert judge(pairs, "loving the new drop #summer #vibes #icecream") == ([True, False], [True, False])


# The two prompts whose letter the authors' code would draw at random: fixed replies, the
# verdicts written out (evalkit counts the character asked for).
FIXED = {
    1122: ("loving the new drop #summer #vibes #icecream #treat", [True, True], [True, True]),
    1129: ("Write a short startup pitch!! Sunnis ice cream!!! Gentle!", [True, False], [True, False]),
}


def _answer_key(records, reference) -> tuple[list[dict], dict, list[tuple]]:
    """A reply per prompt aiming in turn at all, some and none of its instructions followed (by the
    reference's verdict, best of a few draws), three blank ones; the verdicts the key implies."""
    rng = random.Random(541)
    key, verdicts, kinds = [], {}, []
    for i, rec in enumerate(records):
        if rec["key"] in FIXED:
            text, strict, loose = FIXED[rec["key"]]
            key.append({"messages": [{"role": "user", "content": rec["prompt"]}], "reply": text})
            verdicts[str(rec["key"])] = (strict, loose)
            kinds.append("some")
            continue
        aim = ("all", "some", "none")[i % 3]
        best = None
        for _ in range(6):
            text = "  \n " if i in (5, 6, 7) else ifeval_replies.reply(rec, rng)
            strict, loose = ifeval_reference.verdicts(reference, rec, text)
            got = "all" if all(strict) else "none" if not any(strict) else "some"
            best = (text, strict, loose, got)
            if got == aim or i in (5, 6, 7):
                break
        text, strict, loose, got = best
        key.append({"messages": [{"role": "user", "content": rec["prompt"]}], "reply": text})
        verdicts[str(rec["key"])] = (strict, loose)
        kinds.append(got)
    return key, verdicts, kinds


def test_run_scores_exactly_what_the_key_implies(evalkit, start_server, records, reference, tmp_path):
    key, verdicts, kinds = _answer_key(records, reference)
    counts = Counter(kinds)
    assert counts["all"] >= 150 and counts["some"] >= 60 and counts["none"] >= 100, counts
    server = start_server(key, default_reply="unmatched")
    log = tmp_path / "ifeval.jsonl"
    res = evalkit("run", "ifeval", "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
                  "--log-file", str(log))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["primary_metric"] == "prompt_strict" and summary["scored"] == 541 and summary["errors"] == 0
    strict = [s for s, _ in verdicts.values()]
    loose = [lo for _, lo in verdicts.values()]
    m = summary["metrics"]
    assert m["prompt_strict"]["value"] == round(sum(map(all, strict)) / 541, 6)
    assert m["prompt_loose"]["value"] == round(sum(map(all, loose)) / 541, 6)
    assert m["instruction_strict"]["value"] == round(sum(map(sum, strict)) / 834, 6)
    assert m["instruction_loose"]["value"] == round(sum(map(sum, loose)) / 834, 6)
    assert m["instruction_strict"]["weight"] == 834 and m["instruction_strict"]["n"] == 541
    assert m["prompt_strict"]["weight"] is None
    lines = {r["id"]: r for r in read_jsonl(log) if r.get("type") == "sample"}
    assert {sid: (r["grader"]["strict"], r["grader"]["loose"]) for sid, r in lines.items()} == verdicts
    assert lines["1005"]["grader"]["instructions"] == ["detectable_content:number_placeholders"]
    assert lines["1000"]["extracted"] == f"{sum(verdicts['1000'][0])}/3 strict, {sum(verdicts['1000'][1])}/3 loose"


@pytest.mark.parametrize("line, message", [
    ('{"key": 7, "prompt": "Hi", "instruction_id_list": ["keywords:teleport"], "kwargs": [{}]}',
     "key 7: unknown instruction id 'keywords:teleport'"),
    ('{"key": 7, "prompt": "Hi", "instruction_id_list": ["length_constraints:number_words"], "kwargs": [{"num_words": 5}]}',
     "key 7: length_constraints:number_words: takes arguments ['num_words', 'relation'], got ['num_words']"),
    ('{"key": 7, "prompt": "Hi", "instruction_id_list": ["keywords:existence"], "kwargs": [{"keywords": ["(unclosed"]}]}',
     "key 7: keywords:existence: keywords is not a valid regular expression"),
    ('{"key": 7, "prompt": "Hi", "instruction_id_list": ["punctuation:no_comma", "startend:quotation"], "kwargs": [{}]}',
     "key 7: need a non-empty instruction_id_list and one kwargs object per instruction"),
    ('{"key": 7, "prompt": "Hi", "instruction_id_list": ["detectable_format:title"], "kwargs": [{"num_highlights": null}]}',
     None),
])
def test_a_broken_record_is_one_line_naming_file_line_and_key(evalkit, start_server, tmp_path, line, message):
    data = tmp_path / "data" / "ifeval"
    data.mkdir(parents=True)
    (data / "input_data.jsonl").write_text('{"key": 1, "prompt": "Say hi", "instruction_id_list": '
                                           '["punctuation:no_comma"], "kwargs": [{}]}\n' + line + "\n")
    server = start_server([{"match": "Hi", "reply": "<<Hello>>"}])
    res = evalkit("run", "ifeval", "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
                  env={"EVALKIT_DATA_DIR": str(tmp_path / "data")})
    if message is None:                  # a null argument (the Hugging Face layout) is dropped
        assert res.returncode == 0 and json.loads(res.stdout)["metrics"]["prompt_strict"]["value"] == 1.0
        return
    assert res.returncode == 2 and "Traceback" not in res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evalkit: error: ")
    assert f"{data / 'input_data.jsonl'}:2: broken IFEval record: {message}" in err[0]


def test_data_pull_fetches_the_pinned_file_and_list_shows_its_license(evalkit, data_dir, tmp_path):
    from data_mirror import Mirror

    mirror = Mirror(data_dir).start()
    try:
        env = {"EVALKIT_DATA_DIR": "", "EVALKIT_DATA_MIRROR": mirror.url, "EVALKIT_CACHE_DIR": str(tmp_path / "dl"),
               "EVALKIT_REGISTRY": str(mirror.override_registry(tmp_path / "registry"))}
        res = evalkit("data", "pull", "ifeval", env=env)
        assert res.returncode == 0, res.stderr
        got = tmp_path / "dl" / "data" / "ifeval" / "input_data.jsonl"
        assert got.read_bytes() == (data_dir / "ifeval" / "input_data.jsonl").read_bytes()
        assert [e["path"] for e in mirror.log] == ["/raw.githubusercontent.com/google-research/google-research/"
                                                   "26d8ccdab6fec61b5c83ad6327ea8bda9e580288/instruction_following_eval/"
                                                   "data/input_data.jsonl"]
        rows = {r["name"]: r for r in map(json.loads, evalkit("data", "list", "--json", env=env).stdout.splitlines())}
        assert rows["ifeval"]["license"] == "CC BY 4.0" and rows["ifeval"]["size"] == 207111
        assert rows["ifeval"]["state"] == "cached"
        assert rows["ifeval"]["source"] == "github.com/google-research/google-research@26d8ccdab6fe"
    finally:
        mirror.stop()


def test_a_fresh_process_scores_in_many_threads_at_once(evalkit_process, start_server, records):
    """The scorer's first replies arrive together in worker threads of a new process (where NLTK
    is not imported yet): every one is scored, none is an error."""
    key = [{"messages": [{"role": "user", "content": r["prompt"]}], "reply": "MY ANSWER IS YES. No commas here"}
           for r in records[:48]]
    server = start_server(key, latency=0.05)
    res = evalkit_process("run", "ifeval", "--model", "openai/m", "--base-url", server.url, "--limit", "48",
                          "--concurrency", "16", "--json", "--quiet")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["scored"] == 48 and summary["errors"] == 0


def test_the_linear_scanners_are_the_authors_regexes_on_every_short_string():
    """scan.py replaces three patterns that take quadratic time on hostile text: on every string of
    up to 4 of these pieces (and 3,000 longer random ones) each gives what re.findall gives."""
    import itertools
    import re

    from evalkit.scoring.ifeval import scan
    from evalkit.scoring.ifeval.layout import _BULLET_DASH, _BULLET_STAR

    pieces = ["[", "]", "\n", " ", "*", "-", "<", ">", "x", "\t", "<<", ">>", "\u00a0", "\r"]
    rng = random.Random(4)
    texts = ["".join(t) for n in range(5) for t in itertools.product(pieces, repeat=n)]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(5, 14))) for _ in range(3000)]
    for t in texts:
        assert scan.placeholders(t) == len(re.findall(r"\[.*?\]", t)), repr(t)
        assert scan.titles(t) == re.findall(r"<<[^\n]+>>", t), repr(t)
        assert scan.line_start_matches(_BULLET_STAR, t) == len(re.findall(r"^\s*\*[^\*].*$", t, re.M)), repr(t)
        assert scan.line_start_matches(_BULLET_DASH, t) == len(re.findall(r"^\s*-.*$", t, re.M)), repr(t)


@pytest.mark.parametrize("iid, kw, text, followed", [
    ("detectable_content:number_placeholders", {"num_placeholders": 1}, "[" * 200_000, False),
    ("detectable_content:number_placeholders", {"num_placeholders": 1}, "[" * 200_000 + "]", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 1}, "\n" * 200_000 + "* one", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 0}, " \n" * 100_000 + "no list", True),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, " " * 200_000 + "P. S. hi", True),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"}, " " * 200_000 + "p.s.", False),
    ("detectable_format:title", {}, "<<" * 100_000, False),
    ("detectable_format:title", {}, "<<" * 100_000 + "x>>", True),
])
def test_hostile_long_replies_are_judged_at_once(iid, kw, text, followed):
    """200,000 characters that kept the authors' regexes busy for minutes."""
    from evalkit.scoring.ifeval import follows

    assert follows(iid, kw, text) is followed

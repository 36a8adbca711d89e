"""Contamination (GPT-4 report, Appendix C) on a corpus built to contain exactly known samples."""

from __future__ import annotations

import csv
import gzip
import json

from evalkit.analysis.contamination import normalize


def anatomy(data_dir):
    with open(data_dir / "mmlu" / "test" / "anatomy_test.csv", newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def mangle_spacing(text: str) -> str:
    """Same letters and digits, different spaces, punctuation and case."""
    return "  ".join(text.upper().split()).replace(" ", " -- ").replace("?", "?!...")


def near_miss(text: str) -> str:
    """Change one letter in every 40, so every 50-character window differs somewhere."""
    chars = list(text)
    letters = [i for i, c in enumerate(chars) if c.isalnum()]
    for k in letters[::40]:
        chars[k] = "q" if chars[k] != "q" else "z"
    return "".join(chars)


def test_contaminated_samples_are_found_exactly(evalkit, data_dir, tmp_path):
    rows = anatomy(data_dir)
    long_rows = [i for i, r in enumerate(rows) if len(normalize(r[0])) > 120]
    a, b, c, d, e, f, g = long_rows[:7]
    short = next(i for i, r in enumerate(rows) if len(normalize(r[0])) <= 50)
    text = tmp_path / "web.txt"
    filler = "the quick brown fox jumps over the lazy dog, again and again.\n" * 200
    text.write_text(filler + rows[a][0] + "\n" + filler
                    + mangle_spacing(rows[b][0]) + "\n"          # caught: only spacing/punctuation/case differ
                    + near_miss(rows[e][0]) + "\n"                # not caught
                    + "Answer: " + rows[f][1 + "ABCD".index(rows[f][5])] + "\n"   # an answer, not a question
                    + "Quiz: " + rows[short][0] + " (from a forum)\n", encoding="utf-8")
    docs = tmp_path / "docs.jsonl.gz"
    with gzip.open(docs, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"url": "x", "text": "Intro. " + rows[c][0] + " Outro."}) + "\n")
        fh.write(json.dumps({"text": near_miss(rows[g][0])}) + "\n")
    boundary = tmp_path / "big.txt"          # a question straddling the 8 MiB chunk boundary
    head = b"lorem ipsum " * ((8 << 20) // 12)
    q = rows[d][0].encode()
    boundary.write_bytes(head[: (8 << 20) - len(q) // 2] + q + b" lorem ipsum" * 1000)

    ids_file = tmp_path / "contaminated.txt"
    res = evalkit("contamination", "mmlu.anatomy", "--corpus", str(text), "--corpus", str(docs),
                  "--corpus", str(boundary), "--json", "--out", str(ids_file))
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    expected = {f"anatomy/{i}" for i in (a, b, c, d, short)}
    assert set(r["contaminated"]) == expected
    assert r["n"] == 135 and r["share"] == round(5 / 135, 6)
    assert r["corpus_bytes"] > 8 << 20
    assert set(ids_file.read_text().split()) == expected

    run = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                  "--exclude", str(ids_file), "--dry-run", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["samples"] == 130


def test_clean_subset_run_and_report(evalkit, start_server, data_dir, tmp_path):
    rows = anatomy(data_dir)
    ids = tmp_path / "ids.txt"
    ids.write_text("# contaminated\nanatomy/0\nanatomy/1\nanatomy/2\n")
    server = start_server([{"match": r[0], "reply": r[5] if i > 2 else "ABCD"[("ABCD".index(r[5]) + 1) % 4]}
                           for i, r in enumerate(rows)])
    logs = []
    for extra in ([], ["--exclude", str(ids)]):
        out = evalkit("run", "mmlu.anatomy", "--model", "openai/m", "--base-url", server.url, "--json", *extra)
        assert out.returncode == 0, out.stderr
        logs.append(json.loads(out.stdout))
    full, clean = logs
    assert full["n"] == 135 and clean["n"] == 132 and clean["excluded"] == 3
    assert clean["metrics"]["accuracy"]["value"] == 1.0 and full["metrics"]["accuracy"]["value"] < 1.0
    assert full["log"] != clean["log"]
    report = evalkit("report", full["log"], clean["log"])
    assert "| openai/m (clean: 3 excluded) | 1.0000 [" in report.stdout and "| openai/m | 0.9778 [" in report.stdout


def test_bad_corpus_paths(evalkit, tmp_path):
    res = evalkit("contamination", "mmlu.anatomy", "--corpus", str(tmp_path / "nope.txt"))
    assert res.returncode == 2 and "no such file" in res.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    res = evalkit("contamination", "mmlu.anatomy", "--corpus", str(bad))
    assert res.returncode == 2 and f"{bad}:2: not valid JSON" in res.stderr


def test_both_matching_engines_agree(monkeypatch, tmp_path):
    import sys

    from evalkit.analysis.contamination import scan_corpus

    corpus = tmp_path / "c.txt"
    corpus.write_text("Alpha beta, GAMMA!\ndelta epsilon zeta\n" * 1000 + "omega psi\n")
    patterns = [b"alphabetagamma", b"zetaalpha", b"omegapsi", b"nothere", b"gammadelta"]
    found_hs, _, engine = scan_corpus([str(corpus)], patterns)
    monkeypatch.setitem(sys.modules, "hyperscan", None)      # as on a machine without a Hyperscan wheel
    found_ac, _, fallback = scan_corpus([str(corpus)], patterns)
    assert fallback == "ahocorasick-rs" and found_ac == found_hs == {0, 1, 2, 4}
    assert engine in ("hyperscan", "ahocorasick-rs")

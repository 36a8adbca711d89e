"""`validate` catches what `run` catches (issue 24): names defined twice, the data checked as a
run checks it before sending, multiple-choice answers that are labels (or mapped from text), and the
test server's answer key built from an eval's own data (the YAML's JSON Schemas: tests/unit/test_yaml_schemas.py)."""

from __future__ import annotations

import json
import textwrap

from conftest import one_line_error

PLANETS = [
    {"id": "p1", "question": "Which planet is closest to the Sun?", "choices": ["Venus", "Mercury", "Mars", "Earth"],
     "answer": "B", "topic": "solar"},
    {"id": "p2", "question": "Which planet is the largest?", "choices": ["Jupiter", "Saturn", "Neptune", "Earth"],
     "answer": 0, "topic": "solar"},
]

MC = """\
    planets:
      template: multiple_choice
      dataset: {format: jsonl, path: ./planets.jsonl, fields: {id: id, choices: choices}}
      scoring: {method: letter}
    """


def write(folder, name: str, text: str):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def data(folder, name: str = "planets.jsonl", rows: list[dict] = PLANETS):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- names defined twice

def test_a_name_in_two_files_is_reported_with_both_places_and_each_is_checked(evalkit, tmp_path):
    data(tmp_path)
    a = write(tmp_path, "a.yaml", MC + "  generation: {temprature: 0.5}\n")
    c = write(tmp_path, "c.yaml", MC)
    res = evalkit("validate", str(a), str(c))
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        f"{c}:1: planets: already defined at {a}:1 (the later definition hides the earlier; rename one)",
        f"{a}:5: planets.generation.temprature: unknown key (did you mean `temperature`?)",
    ]
    assert res.stderr == "2 problem(s) in 2 spec(s)\n"


def test_fourteen_broken_copies_in_one_folder_each_reported_once(evalkit, tmp_path):
    data(tmp_path / "evals")
    for i in range(14):
        write(tmp_path / "evals", f"copy{i:02}.yaml", MC + f"  generation: {{temp{i}: 0}}\n")
    res = evalkit("validate", str(tmp_path))
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert len(lines) == len(set(lines)) == 13 + 14
    for i in range(14):
        assert f"{tmp_path}/evals/copy{i:02}.yaml:5: planets.generation.temp{i}: unknown key (allowed: " in res.stdout
    for i in range(1, 14):
        assert (f"{tmp_path}/evals/copy{i:02}.yaml:1: planets: already defined at "
                f"{tmp_path}/evals/copy00.yaml:1 (the later definition hides the earlier; rename one)") in lines


def test_run_and_list_refuse_a_name_two_registry_files_define(evalkit, tmp_path, start_server):
    reg = tmp_path / "reg"
    data(reg / "evals")
    one, two = write(reg / "evals", "one.yaml", MC), write(reg / "evals", "two.yaml", MC)
    server = start_server([])
    env = {"EVALKIT_REGISTRY": str(reg)}
    res = evalkit("run", "planets", "--model", "openai/m", "--base-url", server.url, env=env)
    assert one_line_error(res) == (f"evalkit: error: eval 'planets' is defined twice, at {one}:1 and {two}:1; "
                                   "rename one (`evalkit validate` checks a folder)")
    assert server.stats().get("requests", 0) == 0
    listed = evalkit("list", env=env)
    assert listed.returncode == 0
    assert (f"eval planets is defined twice, at {one}:1 and {two}:1: `evalkit run planets` refuses it until one "
            "is renamed\n") in listed.stderr
    child = write(reg / "evals", "three.yaml", "child:\n  extends: planets\n")
    res = evalkit("run", "child", "--model", "openai/m", "--base-url", server.url, env=env)
    assert one_line_error(res) == (f"evalkit: error: {child}:2: child.extends: eval 'planets' is defined twice, "
                                   f"at {one}:1 and {two}:1; rename one")
    child.unlink()
    # the file given by path is the one meant: no ambiguity
    mine = evalkit("validate", str(one), env=env)
    assert mine.returncode == 0, mine.stdout
    assert mine.stderr == "ok: 1 spec(s) valid (data read for 1)\n"


# ----------------------------------------------------------------------------- what run catches before sending

CASES = {
    "placeholder": (4, """\
        planets:
          template: match
          dataset: {format: jsonl, path: ./planets.jsonl, fields: {id: id}}
          prompt: {template: "{questoin}"}
          scoring: {method: exact}
        """, "planets: prompt.template uses {{questoin}}, which sample p1 does not have "
             "(available: answer, number, question, topic)"),
    "fields": (3, """\
        planets:
          template: match
          dataset: {format: jsonl, path: ./planets.jsonl, fields: {id: ident}}
          scoring: {method: exact}
        """, "{data}:1: record has no field 'ident' (dataset.fields.id)"),
    "group_by": (4, """\
        planets:
          template: match
          dataset: {format: jsonl, path: ./planets.jsonl, fields: {id: id}}
          group_by: topik
          scoring: {method: exact}
        """, "planets ({spec}): group_by: sample p1 has no field 'topik' (fields: topic)"),
    "no ./": (3, """\
        planets:
          template: match
          dataset: {format: jsonl, path: planets.jsonl}
          scoring: {method: exact}
        """, "planets: data not found at {mirror}/planets.jsonl; EVALKIT_DATA_DIR={mirror} is an offline "
             "mirror, used as it is: point it at a folder holding planets.jsonl (a file beside the spec is "
             "written ./planets.jsonl)"),
    "no choices": (3, """\
        planets:
          template: multiple_choice
          dataset: {format: jsonl, path: ./planets.jsonl, fields: {id: id}}
          scoring: {method: letter}
        """, "planets ({spec}): sample p1 has no options, and a multiple-choice eval asks for one of them: map "
             "the options' field with dataset.fields.choices (a list field, or a list of field names)"),
}


def test_validate_says_what_run_says_before_sending(evalkit, tmp_path, start_server, data_dir):
    server = start_server([])
    for case, (line, text, said) in CASES.items():
        folder = tmp_path / case.replace(" ", "_").replace("./", "dot")
        spec, rows = write(folder, "e.yaml", text), data(folder)
        said = said.format(spec=spec, data=rows, mirror=data_dir)
        res = evalkit("validate", str(spec))
        assert res.returncode == 1, (case, res.stderr)
        where = f"{spec}:{line}: " + ("" if said.startswith("planets") else "planets: ")
        assert res.stdout == f"{where}{said}\n", case
        run = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url)
        assert one_line_error(run) == f"evalkit: error: {said}", case
    assert server.stats().get("requests", 0) == 0


def test_an_unknown_grader_has_file_line_and_a_hint(evalkit, tmp_path):
    data(tmp_path)
    spec = write(tmp_path, "g.yaml", """\
        graded:
          template: model_graded
          dataset: {format: jsonl, path: ./planets.jsonl, fields: {id: id}}
          scoring:
            method: graded
            grader: closedq
        """)
    res = evalkit("validate", str(spec))
    assert res.returncode == 1
    assert res.stdout == (f"{spec}:6: graded.scoring.grader: unknown grader 'closedq'; did you mean closedqa? "
                          "graders: closedqa, fact, pairwise, refusal, simpleqa\n")


# ----------------------------------------------------------------------------- multiple-choice answers

TEXT_ANSWERS = [{**r, "answer": r["choices"][1 if r["id"] == "p1" else 0]} for r in PLANETS]


def test_an_answer_given_as_option_text_is_refused_with_the_fix(evalkit, tmp_path, start_server):
    data(tmp_path, rows=TEXT_ANSWERS)
    spec = write(tmp_path, "mc.yaml", MC)
    said = (f"planets ({spec}): sample p1: field 'answer': answer 'Mercury' is the text of option B, not a label "
            "(A-D) or an index (0-3); add `answer_is: text` under `dataset:` to map option texts to labels")
    res = evalkit("validate", str(spec))
    assert res.returncode == 1 and res.stdout == f"{spec}:3: {said}\n"
    server = start_server([])
    run = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url)
    assert one_line_error(run) == f"evalkit: error: {said}"
    assert server.stats().get("requests", 0) == 0


def test_answer_is_text_maps_option_texts_to_their_labels(evalkit, tmp_path, start_server):
    data(tmp_path, rows=TEXT_ANSWERS)
    spec = write(tmp_path, "mc.yaml", MC.replace("fields: {id: id, choices: choices}",
                                                 "fields: {id: id, choices: choices}, answer_is: text"))
    res = evalkit("validate", str(spec))
    assert res.returncode == 0, res.stdout
    server = start_server([{"match": "closest to the Sun", "reply": "Answer: B"},
                           {"match": "the largest", "reply": "Answer: C"}])
    run = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["metrics"]["accuracy"]["value"] == 0.5       # p1 right (B is Mercury), p2 wrong (A is Jupiter)
    assert server.stats()["requests"] == 2


def test_labels_beyond_the_options_and_stray_answers_are_refused(evalkit, tmp_path):
    for answer, said in (("E", "answer 'E' is not a label of its 4 options (A-D) nor an index (0-3)"),
                         ("Pluto", "answer 'Pluto' is not a label of its 4 options (A-D) nor an index (0-3)")):
        folder = tmp_path / answer
        data(folder, rows=[{**PLANETS[0], "answer": answer}])
        spec = write(folder, "mc.yaml", MC)
        res = evalkit("validate", str(spec))
        assert res.stdout == f"{spec}:3: planets ({spec}): sample p1: field 'answer': {said}\n"
    folder = tmp_path / "text"
    data(folder, rows=[{**PLANETS[0], "answer": "Pluto"}])
    spec = write(folder, "mc.yaml", MC.replace("choices: choices}", "choices: choices}, answer_is: text"))
    res = evalkit("validate", str(spec))
    assert res.stdout == (f"{spec}:3: planets ({spec}): sample p1: field 'answer': answer 'Pluto' is the text of no "
                          "option (dataset.answer_is: text wants each answer to be exactly one option's text)\n")


def test_answer_is_belongs_to_multiple_choice(evalkit, tmp_path):
    data(tmp_path)
    spec = write(tmp_path, "m.yaml", """\
        planets:
          template: match
          dataset: {format: jsonl, path: ./planets.jsonl, answer_is: text}
          scoring: {method: exact}
        """)
    res = evalkit("validate", str(spec))
    assert res.returncode == 1
    assert res.stdout == (f"{spec}:1: planets: dataset.answer_is applies to multiple-choice evals "
                          "(scoring.method letter), not exact\n")


# ----------------------------------------------------------------------------- the test server's key from an eval

def _implied(key_file, log: str) -> float:
    """The accuracy the key implies for the samples a run logged."""
    from conftest import read_jsonl

    key = {e["id"]: e["correct"] for e in read_jsonl(key_file)}
    ids = [r["id"] for r in read_jsonl(log) if r["type"] == "sample"]
    return sum(key[i] for i in ids) / len(ids)


def test_answers_from_an_eval_score_exactly_what_the_key_implies(evalkit, start_server, tmp_path):
    from conftest import read_jsonl

    for name, limit in (("mmlu.anatomy", None), ("gsm8k", "50")):
        for accuracy in ("1", "0.5"):
            key = tmp_path / f"{name}-{accuracy}.jsonl"
            server = start_server(answers_from=name, accuracy=accuracy, key_out=key)
            args = ["run", name, "--model", "openai/m", "--base-url", server.url, "--json", "--no-cache",
                    "--log-dir", str(tmp_path / f"logs-{accuracy}")] + (["--limit", limit] if limit else [])
            res = evalkit(*args)
            assert res.returncode == 0, res.stderr
            s = json.loads(res.stdout)
            entries = read_jsonl(key)
            assert s["n"] == (135 if limit is None else 50) and s["unparsed"] == 0 and s["errors"] == 0
            assert len(entries) == (135 if name == "mmlu.anatomy" else 1319)
            assert sum(e["correct"] for e in entries) == round(float(accuracy) * len(entries))
            implied = _implied(key, s["log"])
            assert s["metrics"]["accuracy"]["value"] == round(implied, 6), (name, accuracy)
            if accuracy == "1":
                assert implied == 1.0
            else:
                assert 0.3 < implied < 0.7
            replies = {e["id"]: e["reply"] for e in entries}       # every prompt was the key's own conversation
            assert all(r["completion"] == replies[r["id"]] for r in read_jsonl(s["log"]) if r["type"] == "sample")


def test_answers_from_a_new_eval_file_and_what_it_cannot_key(evalkit, start_server, tmp_path):
    import subprocess
    import sys

    from conftest import read_jsonl

    data(tmp_path, rows=TEXT_ANSWERS + [{**TEXT_ANSWERS[0], "id": "p3"}])     # p3 asks what p1 asks
    spec = write(tmp_path, "mc.yaml", MC.replace("choices: choices}", "choices: choices}, answer_is: text"))
    key = tmp_path / "key.jsonl"
    server = start_server(answers_from=str(spec), accuracy="0.5", key_out=key)
    res = evalkit("run", str(spec), "--model", "openai/m", "--base-url", server.url, "--json")
    assert res.returncode == 0, res.stderr
    correct = {e["id"]: e["correct"] for e in read_jsonl(key)}
    assert correct["p1"] == correct["p3"] != correct["p2"]     # one of the two distinct prompts answered right
    value = json.loads(res.stdout)["metrics"]["accuracy"]["value"]
    assert value == round(_implied(key, json.loads(res.stdout)["log"]), 6) == round((2 if correct["p1"] else 1) / 3, 6)
    refused = subprocess.run([sys.executable, "-m", "evalkit.testserver", "--port", "0", "--answers-from", "humaneval"],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == ("evalkit: error: --answers-from humaneval: scored by `code`; a key answers only evals "
                              "scored from the reply's text (letter, exact, includes, fuzzy, numeric)\n")

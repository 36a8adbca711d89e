"""`evalkit validate`: every problem reported with file, line and field; exit 1."""

import textwrap


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


GOOD = """\
    tiny:
      template: match
      dataset: {format: jsonl, path: ./tiny.jsonl}
      scoring: {method: exact}
    """


def test_registry_is_valid(evalkit):
    res = evalkit("validate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "valid" in res.stderr


def test_good_file(evalkit, tmp_path):
    (tmp_path / "tiny.jsonl").write_text('{"id": "1", "question": "q", "answer": "a"}\n')
    res = evalkit("validate", str(write(tmp_path, "good.yaml", GOOD)))
    assert res.returncode == 0, res.stdout
    assert "ok: 1 spec(s) valid" in res.stderr


def test_a_missing_data_file_beside_the_spec_is_reported(evalkit, tmp_path):
    path = write(tmp_path, "good.yaml", GOOD)
    res = evalkit("validate", str(path))
    assert res.returncode == 1
    assert res.stdout.startswith(f"{path}:3: tiny.dataset.path: ./tiny.jsonl does not exist (looked at ")


def test_every_problem_has_file_line_and_field(evalkit, tmp_path):
    path = write(tmp_path, "bad.yaml", """\
        broken:
          template: multiple_choice
          dataset:
            formt: jsonl
            path: ./x.jsonl
          scoring:
            method: letter
          generation:
            temperature: hot
        other:
          template: nosuch
          dataset: {format: jsonl, path: ./x.jsonl}
        """)
    res = evalkit("validate", str(path))
    assert res.returncode == 1
    out = res.stdout
    assert f"{path}:4: broken.dataset.formt: unknown key (did you mean `format`?)" in out
    assert f"{path}:3: broken.dataset.format: required field is missing" in out
    assert f"{path}:9: broken.generation.temperature:" in out
    assert f"{path}:11: other.template:" in out
    assert f"{path}:10: other.scoring: required field is missing" in out
    assert "5 problem(s)" in res.stderr


def test_unknown_top_level_key_and_bad_extends(evalkit, tmp_path):
    path = write(tmp_path, "ext.yaml", """\
        child:
          extends: mmlu
          group_bye: subject
        orphan:
          extends: mmlu_typo
        """)
    res = evalkit("validate", str(path))
    assert res.returncode == 1
    assert f"{path}:3: child.group_bye: unknown key (did you mean `group_by`?)" in res.stdout
    assert f"{path}:5: orphan.extends: unknown eval 'mmlu_typo' (did you mean mmlu" in res.stdout


def test_yaml_syntax_error_and_duplicate_key(evalkit, tmp_path):
    bad = write(tmp_path, "syntax.yaml", "a:\n  template: [unclosed\n  other: 1\n")
    res = evalkit("validate", str(bad))
    assert res.returncode == 1
    assert res.stdout.startswith(f"{bad}:3: YAML syntax error")
    dup = write(tmp_path, "dup.yaml", textwrap.dedent(GOOD) + "tiny2:\n  template: match\n  template: match\n")
    res = evalkit("validate", str(dup))
    assert res.returncode == 1
    assert f"{dup}:7: tiny2.template: duplicate key" in res.stdout, res.stdout


def test_extends_reuses_a_spec(evalkit, tmp_path):
    path = write(tmp_path, "few.yaml", """\
        mmlu-3shot:
          extends: mmlu
          description: MMLU with three examples
          prompt:
            fewshot: {split: dev, k: 3}
        """)
    res = evalkit("validate", str(path))
    assert res.returncode == 0, res.stdout
    shown = evalkit("show", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "k: 3" in shown.stdout and "about {subject_name}" in shown.stdout and "method: letter" in shown.stdout

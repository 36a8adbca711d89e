"""Typed, versioned contracts: every `--json` output has a published JSON Schema that a real output
validates against, the run log records its format (old logs read, newer ones refused in one line),
a backend is made from a documented `BackendOptions`, and `evalkit.run` returns the Summary the
CLI prints."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, one_line_error, read_jsonl

from evalkit.cli.main import SCHEMA_NAMES

SCHEMAS = ROOT / "docs" / "schemas"
CAPITALS = ROOT / "data" / "examples" / "capitals.yaml"
KEY = [{"match": "capital of France", "reply": "Paris"}, {"match": "capital of Japan", "reply": "It is Tokyo."},
       {"match": "capital of Canada", "reply": "Toronto"}, {"match": "capital of Brazil", "reply": "Brasilia"}]


def check(name: str, instance: dict) -> None:
    """`instance` valid against the published schema `name` (and the schema itself a valid one)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(instance)


def lines(res) -> list[dict]:
    assert res.returncode == 0, res.stderr
    return [json.loads(x) for x in res.stdout.splitlines()]


def run_capitals(evalkit, server, tmp_path, *extra: str) -> dict:
    res = evalkit("run", str(CAPITALS), "--model", "openai/m", "--base-url", server.url, "--json", "--quiet",
                  "--log-dir", str(tmp_path / "logs"), *extra)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_the_published_schema_is_the_model(evalkit, name):
    res = evalkit("schema", name)
    assert res.returncode == 0, res.stderr
    published = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    assert json.loads(res.stdout) == published, f"regenerate it: evalkit schema {name} > docs/schemas/{name}.schema.json"


def test_every_schema_is_named_and_published_once():
    from evalkit.cli.schemas import SCHEMAS as YAML_SCHEMAS
    from evalkit.cli.schemas import output_schemas

    assert sorted(SCHEMA_NAMES) == sorted([*output_schemas(), *YAML_SCHEMAS])
    assert sorted(p.name for p in SCHEMAS.iterdir()) == sorted(f"{n}.schema.json" for n in SCHEMA_NAMES)


def test_a_run_its_log_lines_and_compare_validate(evalkit, start_server, tmp_path):
    s = run_capitals(evalkit, start_server(KEY), tmp_path)
    check("summary", s)
    recs = read_jsonl(s["log"])
    assert list(recs[0])[:2] == ["type", "format"] and recs[0]["format"] == 2
    check("log-header", recs[0])
    samples = [r for r in recs if r["type"] == "sample"]
    assert len(samples) == 5
    for r in samples:
        check("log-sample", r)
    other = start_server(KEY[:1], default_reply="no idea")
    res = evalkit("run", str(CAPITALS), "--model", "openai/m2", "--base-url", other.url, "--json", "--quiet",
                  "--log-dir", str(tmp_path / "logs"))
    worse = json.loads(res.stdout)
    assert worse["metrics"]["accuracy"]["value"] == 0.2
    res = evalkit("compare", s["log"], worse["log"], "--json")
    assert res.returncode == 0, res.stderr            # 2 right->wrong of 5: not significant (p = 0.5)
    r = json.loads(res.stdout)
    assert (r["paired"], r["overall"]["right_to_wrong"], r["overall"]["p_value"]) == (5, 2, 0.5)
    check("compare", r)
    with pytest.raises(jsonschema.ValidationError):                 # the schema can fail
        check("compare", {**r, "gate": {**r["gate"], "passed": "yes"}})


def test_dry_run_with_and_without_prices_validates(evalkit):
    known = lines(evalkit("run", str(CAPITALS), "--model", "openai/gpt-4o-mini", "--dry-run", "--json"))[0]
    unknown = lines(evalkit("run", str(CAPITALS), "--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1",
                            "--dry-run", "--json"))[0]
    assert known["samples"] == unknown["samples"] == 5
    assert known["prices"]["tier"] == "standard" and unknown["prices"] is None
    check("dry-run", known)
    check("dry-run", unknown)


def test_exam_and_exam_shard_outputs_validate(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="(A)")
    base = ("run", "sat-math", "--model", "openai/m", "--base-url", server.url, "--json", "--quiet", "--limit", "8",
            "--log-dir", str(tmp_path / "logs"))
    exam = lines(evalkit(*base))[0]
    assert exam["type"] == "exam" and exam["sections"][0]["n"] == 8 and exam["partial"] == {"limit": 8}
    check("exam-result", exam)
    shard = lines(evalkit(*base, "--shard", "1/2", "--log-dir", str(tmp_path / "shards")))[0]
    assert shard["type"] == "exam_shard" and shard["shard"] == "1/2"
    check("exam-shard", shard)


def test_percentile_outputs_validate(evalkit):
    scaled = lines(evalkit("percentile", "lsat", "163", "--json"))[0]
    assert scaled["percentile"]["text"] == "~88th"
    check("percentile", scaled)
    raw = lines(evalkit("percentile", "sat-math", "--raw", "math=44", "--json"))[0]
    assert raw["raw"] == {"math": 44.0} and raw["scaled"] == 710
    check("percentile", raw)


def test_catalogue_rows_validate(evalkit):
    for command, name, least in (("list", "list", 30), ("exams", "exams", 20), ("providers", "providers", 10)):
        rows = lines(evalkit(command, "--json"))
        assert len(rows) >= least, command
        for row in rows:
            check(name, row)
    assert {r["kind"] for r in lines(evalkit("list", "--json"))} == {"eval", "exam", "grader"}


def test_an_openai_evals_registry_listing_validates(evalkit, tmp_path):
    (tmp_path / "reg" / "evals").mkdir(parents=True)
    (tmp_path / "reg" / "data" / "m").mkdir(parents=True)
    (tmp_path / "reg" / "evals" / "x.yaml").write_text(
        "greet: {id: greet.dev.v0, metrics: [accuracy]}\n"
        "greet.dev.v0: {class: 'evals.elsuite.basic.match:Match', args: {samples_jsonl: m/samples.jsonl}}\n"
        "odd: {id: odd.dev.v0, metrics: [accuracy]}\n"
        "odd.dev.v0: {class: 'evals.elsuite.something:Odd', args: {}}\n")
    (tmp_path / "reg" / "data" / "m" / "samples.jsonl").write_text(
        json.dumps({"input": [{"role": "user", "content": "Say hi"}], "ideal": "hi"}) + "\n")
    rows = lines(evalkit("list", "--registry", str(tmp_path / "reg"), "--json"))
    assert [(r["name"], r["class"], r["supported"]) for r in rows] == [
        ("greet", "evals.elsuite.basic.match:Match", True), ("odd", "evals.elsuite.something:Odd", False)]
    assert rows[1]["reason"].startswith("odd: not supported: evals.elsuite.something:Odd")
    for row in rows:
        check("list-oai", row)


def test_pairwise_and_merge_outputs_validate(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="1")
    res = evalkit("run", "refusals", "--model", "openai/alpha", "--versus", "openai/beta", "--grader-model",
                  "openai/judge", "--base-url", server.url, "--json", "--quiet", "--log-dir", str(tmp_path / "p"))
    pair = lines(res)[0]
    assert pair["n"] == 24
    check("pairwise", pair)
    logs = []
    for i in (1, 2):
        logs.append(run_capitals(evalkit, server, tmp_path, "--shard", f"{i}/2")["log"])
    merged = lines(evalkit("merge", *logs, "--json", "--log-dir", str(tmp_path / "merged")))[0]
    assert merged["n"] == 5 and merged["status"] == "complete"
    check("summary", merged)
    assert read_jsonl(merged["log"])[0]["format"] == 2


def test_batches_contamination_and_data_list_validate(evalkit, start_server, tmp_path, data_dir):
    server = start_server(KEY, batch_validate=0.05, batch_finalize=0.05, batch_step=0.02)
    s = run_capitals(evalkit, server, tmp_path, "--batch", "--batch-poll", "0.05")
    assert s["scored"] == 5 and len(s["batches"]["created"]) == 1
    rows = lines(evalkit("batches", s["log"], "--base-url", server.url, "--json"))
    assert [(r["requests"], r["status"], r["completed"]) for r in rows] == [(5, "completed", 5)]
    check("batches", rows[0])
    with open(data_dir / "mmlu" / "test" / "anatomy_test.csv", newline="", encoding="utf-8") as fh:
        question = next(csv.reader(fh))[0]
    (tmp_path / "corpus.txt").write_text(f"lorem ipsum {question} dolor\n")
    r = lines(evalkit("contamination", "mmlu.anatomy", "--corpus", str(tmp_path / "corpus.txt"), "--json"))[0]
    assert (r["eval"], r["n"], r["contaminated"]) == ("mmlu.anatomy", 135, ["anatomy/0"])
    check("contamination", r)
    datasets = lines(evalkit("data", "list", "--json"))
    assert {"mmlu", "gsm8k"} <= {d["name"] for d in datasets}
    for d in datasets:
        check("data-list", d)


def test_predict_output_validates(evalkit):
    res = evalkit("predict", "--points", str(ROOT / "docs" / "pythia-lambada.csv"), "--hold-out", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    check("predict", report)


# ------------------------------------------------------------------------------ log format

def _rewrite_header(log: str, **change) -> None:
    recs = read_jsonl(log)
    recs[0] = {k: v for k, v in {**recs[0], **change}.items() if v is not None}
    Path(log).write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_a_log_without_format_is_format_1_and_still_reads_and_resumes(evalkit, start_server, tmp_path):
    server = start_server(KEY)
    s = run_capitals(evalkit, server, tmp_path)
    _rewrite_header(s["log"], format=None)            # as an evalkit before formats wrote it
    from evalkit import load_log

    log = load_log(s["log"])
    assert log.format == 1 and log.meta.eval == "capitals" and len(log.samples) == 5
    res = evalkit("report", s["log"])
    assert res.returncode == 0 and "capitals" in res.stdout, res.stderr
    assert evalkit("compare", s["log"], s["log"], "--json").returncode == 0
    sent = server.stats()["completions"]
    again = run_capitals(evalkit, server, tmp_path)
    assert server.stats()["completions"] == sent and again["requests"]["resumed_samples"] == 5
    assert again["metrics"] == s["metrics"]


def test_a_newer_format_is_one_line_everywhere(evalkit, start_server, tmp_path):
    server = start_server(KEY)
    s = run_capitals(evalkit, server, tmp_path)
    _rewrite_header(s["log"], format=3)
    before = Path(s["log"]).read_bytes()
    said = f"{s['log']}: run log format 3 is newer than this evalkit reads (formats 1 to 2)"
    args = ("run", str(CAPITALS), "--model", "openai/m", "--base-url", server.url, "--log-dir", str(tmp_path / "logs"))
    assert said in one_line_error(evalkit(*args))
    assert Path(s["log"]).read_bytes() == before      # nothing appended
    for command in (("report", s["log"]), ("compare", s["log"], s["log"]),
                    ("view", s["log"], "--out", str(tmp_path / "v.html"))):
        assert said in one_line_error(evalkit(*command)), command
    _rewrite_header(s["log"], format="two")
    assert one_line_error(evalkit("report", s["log"])).endswith(f"{s['log']}:1: malformed header: format 'two' is "
                                                               "not an integer")


def test_a_sample_line_of_the_wrong_types_is_one_line_naming_the_field(evalkit, start_server, tmp_path):
    s = run_capitals(evalkit, start_server(KEY), tmp_path)
    recs = read_jsonl(s["log"])
    recs[2] = {**recs[2], "score": "high"}
    recs[3] = {**recs[3], "extras": {"f1": "x"}}
    Path(s["log"]).write_text("".join(json.dumps(r) + "\n" for r in recs))
    for command in (("report", s["log"]), ("compare", s["log"], s["log"])):
        said = one_line_error(evalkit(*command))
        assert said.endswith(f"{s['log']}: sample {recs[2]['id']!r} (line 3): a malformed line: "
                             "score 'high' is not a number"), said
    recs[2]["score"] = 1.0
    Path(s["log"]).write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert one_line_error(evalkit("report", s["log"])).endswith(
        f"{s['log']}: sample {recs[3]['id']!r} (line 4): a malformed line: extras.f1 'x' is not a number")
    res = evalkit("view", s["log"], "--out", str(tmp_path / "v.html"))   # the viewer shows such lines as text
    assert res.returncode == 0, res.stderr


# ------------------------------------------------------------------------ backend and API

def test_get_backend_makes_a_backend_from_backend_options():
    from evalkit.backends import BackendOptions, get_backend

    b = get_backend("openai/m", BackendOptions(base_url="http://127.0.0.1:9/v1", timeout=7.0, max_connections=3))
    assert (b.model, b.endpoint, b._settings[1:]) == ("openai/m", "http://127.0.0.1:9/v1", (7.0, 3))
    assert b.preset.name == "openai"
    vllm = get_backend("vllm/m", BackendOptions())
    assert vllm.preset.name == "vllm" and vllm.model == "vllm/m"


PLUGIN = """
from evalkit.backends.base import Backend, BackendOptions, Capabilities, Completion


class EchoBackend(Backend):
    capabilities = Capabilities()

    def __init__(self, name: str, options: BackendOptions):
        self.model, self.endpoint = f"echo/{name}", f"echo://{options.timeout:g}"

    async def complete(self, request):
        return Completion(text=request.messages[-1]["content"].split()[-1].rstrip("?"))


class OldEchoBackend(EchoBackend):
    def __init__(self, name, base_url=None, timeout=0.0, **_):
        self.model, self.endpoint = f"oldecho/{name}", f"oldecho://{timeout:g}"
"""


def test_a_plugin_backend_takes_backend_options_and_an_old_one_keywords(evalkit_process, tmp_path):
    """A plug-in installed with an entry point (a dist-info folder on the path, as pip leaves it)."""
    site = tmp_path / "site"
    (site / "echo_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "echo_plugin.py").write_text(PLUGIN)
    (site / "echo_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n")
    (site / "echo_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[evalkit.backends]\necho = echo_plugin:EchoBackend\noldecho = echo_plugin:OldEchoBackend\n")
    env = {"PYTHONPATH": f"{ROOT}:{site}"}
    for provider in ("echo", "oldecho"):
        done = evalkit_process("run", str(CAPITALS), "--model", f"{provider}/x", "--timeout", "33", "--json", "--quiet",
                               "--log-dir", str(tmp_path / "logs"), env=env)
        assert done.returncode == 0, done.stderr
        s = json.loads(done.stdout)
        # the reply is the question's last word: "What is the capital of France?" -> "France", never right
        assert (s["model"], s["endpoint"], s["n"], s["metrics"]["accuracy"]["value"]) == (
            f"{provider}/x", f"{provider}://33", 5, 0.0)


def test_evalkit_run_returns_the_summary_the_cli_prints(evalkit, start_server, tmp_path, data_dir):
    server = start_server(KEY)
    cli = run_capitals(evalkit, server, tmp_path, "--no-cache", "--concurrency", "1")   # a peak of 1 either way
    code = (f"import evalkit, json\n"
            f"s = evalkit.run({str(CAPITALS)!r}, model='openai/m', base_url={server.url!r}, quiet=True,"
            f" no_cache=True, concurrency=1, log_dir={str(tmp_path / 'api')!r})\n"
            "assert isinstance(s, evalkit.Summary)\n"
            "print(s.model_dump_json())\n")
    env = {"EVALKIT_DATA_DIR": str(data_dir), "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    api = json.loads(done.stdout)
    assert Path(api["log"]).parent.parent == tmp_path / "api"
    differ = {"duration_s", "log"}
    assert {k: v for k, v in api.items() if k not in differ} == {k: v for k, v in cli.items() if k not in differ}
    assert api["metrics"]["accuracy"]["value"] == 0.6 and api["requests"]["sent"] == 5


def test_import_evalkit_is_lazy():
    code = "import sys, evalkit\nprint(sorted(m for m in sys.modules if m.startswith(('evalkit.', 'pydantic'))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.replace("'", '"')) == []
    typo = ("import evalkit\ntry:\n evalkit.run('capitals', model='openai/m', limt=3)\n"
            "except evalkit.EvalkitError as e:\n print(e)")
    done = subprocess.run([sys.executable, "-c", typo], capture_output=True, text=True, check=False,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.stdout.startswith("evalkit.run: unknown option(s) limt (known: "), done.stderr
    import evalkit

    assert set(evalkit.__all__) == {"__version__", *evalkit._PUBLIC} and all(getattr(evalkit, n) for n in evalkit.__all__)

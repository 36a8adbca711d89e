"""Provider presets through the real CLI and the real `openai` client, against the test server.

For every preset in providers.yaml: the request reaches the provider's path (Azure's deployment
path and api-version included), carries the value of the provider's documented key variable in
the header that provider uses, names the model, and spells the parameters the provider's way
(Mistral's random_seed; no seed where the endpoint ignores it). A missing key is one line naming
the variable; a capability the endpoint lacks is refused before anything is sent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, fake_key, shapes_eval

CAPITALS = ROOT / "data" / "examples" / "capitals.yaml"   # five questions, a system message, seed 0

# preset -> (key variable, seed field as sent: "seed", "random_seed" or None when not sent).
# Written from the providers' documentation, independently of providers.yaml, so the two check
# each other.
EXPECTED = {
    "openai": ("OPENAI_API_KEY", "seed"),
    "anthropic": ("ANTHROPIC_API_KEY", None),
    "gemini": ("GEMINI_API_KEY", None),
    "azure": ("AZURE_OPENAI_API_KEY", "seed"),
    "together": ("TOGETHER_API_KEY", None),
    "groq": ("GROQ_API_KEY", None),
    "openrouter": ("OPENROUTER_API_KEY", "seed"),
    "mistral": ("MISTRAL_API_KEY", "random_seed"),
    "deepseek": ("DEEPSEEK_API_KEY", None),
    "fireworks": ("FIREWORKS_API_KEY", None),
    "vllm": ("VLLM_API_KEY", "seed"),
    "ollama": ("OLLAMA_API_KEY", "seed"),
    "llamacpp": ("LLAMA_API_KEY", "seed"),
    "lmstudio": (None, "seed"),
}
HOSTED = ["anthropic", "gemini", "together", "groq", "openrouter", "mistral", "deepseek", "fireworks"]
ALL_KEYS = {v for v, _ in EXPECTED.values() if v} | {"GOOGLE_API_KEY", "AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION",
                                                      "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"}


def clean_env(**extra) -> dict:
    """No provider key or endpoint from the machine's environment, then `extra`."""
    return {**{k: None for k in ALL_KEYS}, **extra}


def one_line_error(res, code: int = 2) -> str:
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evalkit: error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def completions(server) -> list[dict]:
    return [r for r in server.requests() if r["method"] == "POST"]


def test_every_preset_is_tested():
    shipped = yaml.safe_load((ROOT / "registry" / "providers.yaml").read_text(encoding="utf-8"))
    assert set(shipped) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_request_path_key_model_and_parameters(evalkit, start_server, name):
    server = start_server([{"match": "capital of France", "reply": "Paris"}])
    key_var, seed_field = EXPECTED[name]
    secret = fake_key(f"test-{name}-")
    env = clean_env(**({key_var: secret} if key_var else {}))
    base = server.url.removesuffix("/v1") if name == "azure" else server.url
    res = evalkit("run", str(CAPITALS), "--model", f"{name}/my-model", "--base-url", base, "--json", env=env)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["model"] == f"{name}/my-model" and summary["n"] == 5 and summary["errors"] == 0
    assert summary["metrics"]["accuracy"]["value"] == 0.2          # France only: every reply reached the server
    sent = completions(server)
    assert len(sent) == 5
    for req in sent:
        headers, body = req["headers"], req["body"]
        if name == "azure":
            assert req["path"] == "/openai/deployments/my-model/chat/completions?api-version=2024-10-21"
            assert headers["api-key"] == secret and "authorization" not in headers
        else:
            assert req["path"] == "/v1/chat/completions"
            assert headers["authorization"] == f"Bearer {secret if key_var else 'no-key'}"
        assert body["model"] == "my-model"
        assert body["messages"][0] == {"role": "system", "content": "Answer with the name of the city only."}
        if name == "deepseek":    # thinks by default: no temperature while thinking, a reasoning budget on top
            assert "temperature" not in body and body["max_tokens"] == 16 + 16384
        else:
            assert body["temperature"] == 0 and body["max_tokens"] == 16
        seeds = {k: body[k] for k in ("seed", "random_seed") if k in body}
        assert seeds == ({seed_field: 0} if seed_field else {}), seeds
        assert "openai-organization" not in headers and "openai-project" not in headers
    backend = summary["backend"]
    assert backend["provider"] == name
    assert ("seed" in backend) == (seed_field is None)        # an unsent seed is said in the summary


def test_azure_reads_its_endpoint_and_api_version_variables(evalkit, start_server):
    server = start_server([], default_reply="Paris")
    secret = fake_key("")
    env = clean_env(AZURE_OPENAI_API_KEY=secret, AZURE_OPENAI_ENDPOINT=server.url.removesuffix("/v1"),
                    OPENAI_API_VERSION="2025-01-01-preview")
    res = evalkit("run", str(CAPITALS), "--model", "azure/gpt4o-prod", "--limit", "1", "--json", env=env)
    assert res.returncode == 0, res.stderr
    (req,) = completions(server)
    assert req["path"] == "/openai/deployments/gpt4o-prod/chat/completions?api-version=2025-01-01-preview"
    assert req["headers"]["api-key"] == secret
    msg = one_line_error(evalkit("run", str(CAPITALS), "--model", "azure/gpt4o-prod",
                                 env=clean_env(AZURE_OPENAI_API_KEY="x" * 12)))
    assert "AZURE_OPENAI_ENDPOINT is not set" in msg


def test_gemini_falls_back_to_google_api_key(evalkit, start_server):
    server, secret = start_server([], default_reply="Paris"), fake_key("")
    res = evalkit("run", str(CAPITALS), "--model", "gemini/gemini-2.5-flash", "--base-url", server.url, "--limit", "1",
                  env=clean_env(GOOGLE_API_KEY=secret))
    assert res.returncode == 0, res.stderr
    assert completions(server)[0]["headers"]["authorization"] == f"Bearer {secret}"


@pytest.mark.parametrize("name", HOSTED + ["openai", "azure"])
def test_missing_key_is_one_line_naming_the_variable(evalkit, name):
    env = clean_env(AZURE_OPENAI_ENDPOINT="https://example-resource.openai.azure.com") if name == "azure" else clean_env()
    msg = one_line_error(evalkit("run", str(CAPITALS), "--model", f"{name}/m", env=env))
    assert f"{EXPECTED[name][0]} is not set" in msg


def test_a_refused_key_names_the_providers_variable(evalkit, start_server):
    server, wrong = start_server([], status=401), fake_key("")
    res = evalkit("run", str(CAPITALS), "--model", "mistral/m", "--base-url", server.url,
                  env=clean_env(MISTRAL_API_KEY=wrong))
    assert res.returncode == 2, res.stderr
    assert "not authorised" in res.stderr and "check MISTRAL_API_KEY" in res.stderr and "OPENAI_API_KEY" not in res.stderr
    assert wrong not in res.stderr + res.stdout


def test_local_servers_need_no_key(evalkit, start_server):
    server = start_server([], default_reply="Paris")
    for name in ("vllm", "ollama", "llamacpp", "lmstudio"):
        res = evalkit("run", str(CAPITALS), "--model", f"{name}/m", "--base-url", server.url, "--limit", "1",
                      "--fresh", env=clean_env())
        assert res.returncode == 0, (name, res.stderr)
    assert [r["headers"]["authorization"] for r in completions(server)] == ["Bearer no-key"] * 4


@pytest.mark.parametrize("name, flags, words", [
    ("groq", ["--logprobs"], "returns no log-probabilities"),
    ("anthropic", ["--answer-by", "logprob"], "cannot answer by option probability"),
    ("gemini", ["--answer-by", "logprob"], "cannot answer by option probability"),
])
def test_a_missing_capability_is_refused_before_any_request(evalkit, start_server, name, flags, words):
    server = start_server([], default_reply="A")
    key_var = EXPECTED[name][0]
    res = evalkit("run", "mmlu.anatomy", "--model", f"{name}/m", "--base-url", server.url, "--limit", "3", *flags,
                  env=clean_env(**{key_var: "k" * 16}))
    msg = one_line_error(res)
    assert f"{name}/m" in msg and words in msg
    assert completions(server) == [] and server.stats().get("requests", 0) == 0


def test_logprobs_sent_where_supported(evalkit, start_server):
    server = start_server([], default_reply="A")
    res = evalkit("run", "mmlu.anatomy", "--model", "vllm/m", "--base-url", server.url, "--limit", "2",
                  "--answer-by", "logprob", "--json", env=clean_env())
    assert res.returncode == 0, res.stderr
    body = completions(server)[0]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 1


def test_user_registry_adds_a_provider_and_its_refusals(evalkit, start_server, tmp_path):
    """A providers.yaml in EVALKIT_REGISTRY adds a provider; one without system messages refuses an
    eval that has one, before sending anything."""
    reg = tmp_path / "myreg"
    reg.mkdir()
    (reg / "providers.yaml").write_text(yaml.safe_dump({"acme": {
        "title": "Acme inference", "base_url": "https://api.acme.example/v1", "key_env": ["ACME_TOKEN"],
        "docs": "https://acme.example/docs", "renames": {"max_tokens": "max_new_tokens"},
        "capabilities": {"max_top_logprobs": 5, "seed": True, "system_messages": False, "images": False}}}))
    server = start_server([], default_reply="B")
    token = fake_key("acme-")
    env = clean_env(EVALKIT_REGISTRY=str(reg), ACME_TOKEN=token)
    msg = one_line_error(evalkit("run", str(CAPITALS), "--model", "acme/m1", "--base-url", server.url, env=env))
    assert "acme/m1 takes no system message" in msg and completions(server) == []
    res = evalkit("run", "mmlu.anatomy", "--model", "acme/m1", "--base-url", server.url, "--limit", "1",
                  "--answer-by", "logprob", env=env)
    assert res.returncode == 0, res.stderr
    (req,) = completions(server)
    assert req["headers"]["authorization"] == f"Bearer {token}"
    assert req["body"]["max_new_tokens"] == 1 and "max_tokens" not in req["body"] and req["body"]["top_logprobs"] == 5
    msg = one_line_error(evalkit("run", str(CAPITALS), "--model", "acme/m1", env=clean_env(EVALKIT_REGISTRY=str(reg))))
    assert "ACME_TOKEN is not set" in msg


def test_a_broken_providers_file_is_one_line(evalkit, tmp_path):
    reg = tmp_path / "badreg"
    reg.mkdir()
    (reg / "providers.yaml").write_text("acme:\n  title: Acme\n  base_url: ftp://nope\n  docs: https://a.example\n"
                                        "  capabilities: {max_top_logprobs: 50, seed: true, system_messages: true, "
                                        "images: true}\n  colour: blue\n")
    msg = one_line_error(evalkit("run", str(CAPITALS), "--model", "acme/m", env=clean_env(EVALKIT_REGISTRY=str(reg))))
    assert "providers.yaml:" in msg and "acme." in msg


def test_providers_listing(evalkit):
    res = evalkit("providers", "--json")
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in map(json.loads, res.stdout.splitlines())}
    assert set(EXPECTED) | {"local"} <= set(rows)
    for name, (key_var, seed_field) in EXPECTED.items():
        row = rows[name]
        assert row["key_env"][:1] == ([key_var] if key_var else [])
        assert row["seed"] == (seed_field is not None)
        assert set(row["sources"]) == {"endpoint", "logprobs", "seed", "system_messages", "images"}, name
        assert all(s["url"].startswith("https://") and s["checked"] for s in row["sources"].values())
    assert rows["groq"]["logprobs"] is False and rows["openai"]["max_top_logprobs"] == 20
    assert rows["anthropic"]["base_url"] == "https://api.anthropic.com/v1" and rows["anthropic"]["images"] is True
    assert rows["gemini"]["key_env"] == ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
    assert rows["azure"]["base_url_env"] == "AZURE_OPENAI_ENDPOINT" and rows["mistral"]["renames"] == {"seed": "random_seed"}
    assert rows["ollama"]["base_url"] == "http://localhost:11434/v1" and rows["ollama"]["key_required"] is False
    assert rows["local"]["kind"] == "in-process"
    text = evalkit("providers").stdout
    assert text.splitlines()[0].split() == ["provider", "key", "variable", "default", "URL", "logprobs", "seed",
                                            "system", "images", "prices"]
    line = {row.split()[0]: row for row in text.splitlines() if row.split() and row.split()[0].endswith("/")}
    assert "GROQ_API_KEY" in line["groq/"] and "https://api.groq.com/openai/v1" in line["groq/"]
    assert line["gemini/"].endswith("2026-11-30 (5 models)") and line["azure/"].endswith("not recorded")
    assert line["vllm/"].endswith("none") and line["local/"].endswith("none")


def test_prices_come_from_the_provider(evalkit, start_server):
    res = evalkit("run", str(CAPITALS), "--model", "anthropic/claude-sonnet-4-20250514", "--dry-run", "--json",
                  env=clean_env())
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["prices"]["input_per_million"] == 3.0 and plan["prices"]["output_per_million"] == 15.0
    assert plan["prices"]["source"].startswith("https://docs.anthropic.com/") and plan["prices"]["recorded"]
    # a model the table does not list exactly (or as a dated snapshot) has no price, never a neighbour's
    newer = json.loads(evalkit("run", str(CAPITALS), "--model", "anthropic/claude-sonnet-4-5", "--dry-run", "--json",
                               env=clean_env()).stdout)
    assert newer["prices"] is None and newer["estimated_cost_usd"]["prompt"] is None
    server = start_server([], default_reply="Paris")
    msg = one_line_error(evalkit("run", str(CAPITALS), "--model", "groq/llama-3.3-70b", "--base-url", server.url,
                                 "--max-cost", "1", env=clean_env(GROQ_API_KEY="g" * 20)))
    assert "no price is known for groq/llama-3.3-70b" in msg and completions(server) == []
    s = json.loads(evalkit("run", str(CAPITALS), "--model", "anthropic/claude-3-5-haiku-latest", "--base-url", server.url,
                           "--json", env=clean_env(ANTHROPIC_API_KEY="a" * 20)).stdout)
    u = s["usage"]
    assert s["cost_usd"]["this_run"] == pytest.approx((u["prompt_tokens"] * 0.80 + u["completion_tokens"] * 4.00) / 1e6)


def test_providers_page_table_is_current():
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "providers_table.py"), "--check"],
                         capture_output=True, text=True, cwd=Path(ROOT))
    assert res.returncode == 0, res.stdout + res.stderr


# Each preset's documented default endpoint, written from its documentation (not from providers.yaml).
DEFAULT_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    "together": "https://api.together.ai/v1",
    "groq": "https://api.groq.com/openai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "vllm": "http://localhost:8000/v1",
    "ollama": "http://localhost:11434/v1",
    "llamacpp": "http://localhost:8080/v1",
    "lmstudio": "http://localhost:1234/v1",
}


def test_default_url_of_every_preset(evalkit):
    """Without --base-url a request goes to the provider's documented URL; a dry run says where,
    needing no key. Azure's is the resource's, from AZURE_OPENAI_ENDPOINT, plus the deployment path."""
    assert set(DEFAULT_URLS) | {"azure"} == set(EXPECTED)
    for name, url in DEFAULT_URLS.items():
        res = evalkit("run", str(CAPITALS), "--model", f"{name}/my-model", "--dry-run", "--json", env=clean_env())
        assert res.returncode == 0, (name, res.stderr)
        assert json.loads(res.stdout)["endpoint"] == url, name
    azure = "https://my-resource.openai.azure.com"
    res = evalkit("run", str(CAPITALS), "--model", "azure/gpt4o-prod", "--dry-run",
                  env=clean_env(AZURE_OPENAI_ENDPOINT=azure + "/"))
    assert res.returncode == 0 and f"(would go to {azure}/openai/deployments/gpt4o-prod)" in res.stdout, res.stderr
    res = evalkit("run", str(CAPITALS), "--model", "openai/m", "--dry-run", "--json",
                  env=clean_env(OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert json.loads(res.stdout)["endpoint"] == "http://127.0.0.1:9/v1"
    # and a real run of a hosted preset without its key says where it would have gone
    for name in HOSTED:
        msg = one_line_error(evalkit("run", str(CAPITALS), "--model", f"{name}/m", env=clean_env()))
        assert f"at {DEFAULT_URLS[name]} " in msg, msg


def image_eval(tmp_path: Path) -> Path:
    """A two-item multiple-choice eval whose items carry an image."""
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e22ae3960000000049454e44ae426082")
    (tmp_path / "shape.png").write_bytes(png)
    return shapes_eval(tmp_path, [{"id": f"q{i}", "question": f"Which shape is shown ({i})?",
                                   "choices": ["circle", "square"], "answer": "A", "img": "shape.png"} for i in (1, 2)])


@pytest.mark.parametrize("name", ["groq", "deepseek", "fireworks", "gemini"])
def test_images_are_refused_where_the_endpoint_reads_none(evalkit, start_server, tmp_path, name):
    server = start_server([], default_reply="A")
    env = clean_env(**{EXPECTED[name][0]: "k" * 16})
    spec = image_eval(tmp_path)
    msg = one_line_error(evalkit("run", str(spec), "--model", f"{name}/m", "--base-url", server.url, env=env))
    assert f"{name}/m reads no images; pass --no-vision" in msg and completions(server) == []
    res = evalkit("run", str(spec), "--model", f"{name}/m", "--base-url", server.url, "--no-vision", "--json", env=env)
    assert res.returncode == 0, res.stderr
    sent = [r["body"]["messages"][-1]["content"] for r in completions(server)]
    assert len(sent) == 2 and all(isinstance(c, str) and "\nIMAGE: " in c for c in sent)


def test_images_go_as_image_parts_where_the_endpoint_reads_them(evalkit, start_server, tmp_path):
    server = start_server([], default_reply="A")
    res = evalkit("run", str(image_eval(tmp_path)), "--model", "anthropic/m", "--base-url", server.url, "--json",
                  env=clean_env(ANTHROPIC_API_KEY="a" * 16))
    assert res.returncode == 0, res.stderr
    parts = [r["body"]["messages"][-1]["content"] for r in completions(server)]
    assert len(parts) == 2 and all(p[1]["type"] == "image_url" for p in parts)


def test_every_provider_says_its_prices_or_why_none(evalkit, start_server):
    rows = [json.loads(line) for line in evalkit("providers", "--json").stdout.splitlines()]
    for r in rows:
        if r["prices"]:
            assert r["prices"]["source"].startswith("https://") and r["prices"]["models"], r["name"]
            assert re.fullmatch(r"20\d\d-\d\d(-\d\d)?", r["prices"]["recorded"]), r["name"]
        else:
            assert r["price_note"].startswith(("not recorded", "none")), r["name"]
    by_name = {r["name"]: r for r in rows}
    assert {n for n, r in by_name.items() if r["prices"]} == {"openai", "anthropic", "gemini", "groq"}
    for model, price, host in [("gemini/gemini-2.5-flash", (0.30, 2.50), "https://ai.google.dev/"),
                               ("gemini/gemini-2.5-pro", (1.25, 10.00), "https://ai.google.dev/"),
                               ("groq/llama-3.3-70b-versatile", (0.59, 0.79), "https://groq.com/"),
                               ("gemini/gemini-2.5-flash-preview-05-20", None, None),
                               ("mistral/mistral-large-latest", None, None)]:
        plan = json.loads(evalkit("run", str(CAPITALS), "--model", model, "--dry-run", "--json", env=clean_env()).stdout)
        if price is None:
            assert plan["prices"] is None, model
        else:
            got = plan["prices"]
            assert (got["input_per_million"], got["output_per_million"]) == price and got["source"].startswith(host)


def test_a_provider_naming_a_missing_price_table_is_one_line(evalkit, tmp_path):
    reg = tmp_path / "reg"
    reg.mkdir()
    (reg / "providers.yaml").write_text(yaml.safe_dump({"acme": {
        "title": "Acme", "base_url": "https://api.acme.example/v1", "key_env": ["ACME_TOKEN"],
        "docs": "https://acme.example/docs", "prices": "acme-prices",
        "capabilities": {"max_top_logprobs": None, "seed": True, "system_messages": True, "images": False}}}))
    msg = one_line_error(evalkit("providers", env=clean_env(EVALKIT_REGISTRY=str(reg))))
    assert "providers.yaml: provider acme: prices: no price table named 'acme-prices'" in msg


def providers_page_table() -> dict[str, list[str]]:
    """The provider table of docs/providers.md: `--model` name -> its cells."""
    text = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
    block = text.split("<!-- providers table: scripts/providers_table.py -->", 1)[1].split("<!-- end of", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()]
    header, body = rows[0], rows[2:]
    assert header == ["`--model`", "key variable", "default URL", "log-probabilities", "seed", "system messages",
                      "images", "prices", "documentation"]
    return {cells[0].strip("`").rstrip("/"): cells for cells in body}


def test_providers_page_table_agrees_with_evalkit_providers(evalkit):
    """Every row of docs/providers.md's table says what `evalkit providers --json` says, and no provider is
    missing from either."""
    page = providers_page_table()
    rows = {r["name"]: r for r in map(json.loads, evalkit("providers", "--json", env=clean_env()).stdout.splitlines())}
    assert set(page) == set(rows)
    yes_no = {True: "yes", False: "no"}
    for name, r in rows.items():
        _, keys, url, logprobs, seed, system, images, prices, docs = page[name]
        assert re.findall(r"`([A-Z_]+)`", keys) == r["key_env"] and (("optional" in keys) == (
            bool(r["key_env"]) and not r["key_required"])), name
        default = "in-process" if r["kind"] == "in-process" else (f"`{r['base_url']}`" if r["base_url"] else "")
        assert url.startswith(default), name
        assert (f"`${r['base_url_env']}`" in url) == bool(r["base_url_env"]), name
        assert logprobs == (f"yes (top {r['max_top_logprobs']})" if r["logprobs"] else "no"), name
        assert seed.split()[0] == yes_no[r["seed"]] and system == yes_no[r["system_messages"]], name
        assert images == yes_no[r["images"]], name
        if r["prices"]:
            assert prices == f"[recorded {r['prices']['recorded']}]({r['prices']['source']})", name
        else:
            assert prices == r["price_note"], name
        assert docs == (f"[docs]({r['docs']})" if r["docs"] else ""), name

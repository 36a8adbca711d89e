"""What the registries hold, for `evalkit list`, `evalkit exams` and `evalkit validate`.

Rows are plain dicts (the `--json` lines); problems are `file:line: field: message` lines. A
folder given to `validate` (evalkit.cli.validate) is read like a registry: `evals/` (or the folder
itself), plus `exams/` and `graders/` beside it; a file inside an `exams` or `graders` folder is
one of those (`yaml_files`).
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.exams.tables import ExamRegistry
from evalkit.specs.graders import GraderRegistry
from evalkit.specs.registry import Registry


def catalog_rows() -> tuple[list[dict], list[str]]:
    """Evals, exams and graders; and a one-line note when the registry has problems."""
    reg, exams, graders = Registry.default(), ExamRegistry.default(), GraderRegistry.default()
    rows = reg.rows()
    rows += [{"kind": "exam", "name": n, "template": "exam" if e.runnable else "exam (convert)",
              "description": e.title, "subsets": 0, "file": e.source_file} for n, e in exams.exams.items()]
    rows += [{"kind": "grader", "name": n, "template": f"grader {g.eval_type or 'classify'}",
              "description": g.description, "subsets": 0, "file": g.source_file} for n, g in graders.graders.items()]
    count = len(reg.problems) + len(exams.problems) + len(graders.problems)
    twice = [f"eval {name} is defined twice, at {where}: `evalkit run {name}` refuses it until one is renamed"
             for name, where in reg.twice.items()]
    return rows, twice + ([f"({count} problem(s) in the registry; run `evalkit validate`)"] if count else [])


def oai_rows(root: Path) -> tuple[list[dict], list[str]]:
    """An OpenAI Evals registry's evals: class, and whether evalkit runs it (with the reason)."""
    from collections import Counter

    from evalkit.specs.oai_registry import OAIRegistry

    inv = OAIRegistry(root).inventory()
    rows = [{"name": name, **row} for name, row in inv.items()]
    counts = Counter(r["class"] for r in rows if r["supported"])
    note = (f"{sum(counts.values())} of {len(rows)} evals runnable: "
            + ", ".join(f"{c.rsplit(':', 1)[-1]} {n}" for c, n in counts.most_common()))
    return rows, [note]


def exam_rows() -> tuple[list[dict], list[str]]:
    reg = ExamRegistry.default()
    rows = [{"name": name, "title": e.title, "runnable": e.runnable, "sections": [s.name for s in e.sections],
             "percentile": "forms" if e.forms else ("yes" if e.distribution else "no"), "file": e.source_file}
            for name, e in reg.exams.items()]
    return rows, reg.problems


def yaml_files(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    if (path / "evals").is_dir():   # a registry folder: read by kind (evalkit.core.plugins)
        from evalkit.core.plugins import files_of

        return [f for kind in ("evals", "exams", "graders") for f in files_of(kind, path)]
    files = sorted(path.rglob("*.yaml")) + sorted(path.rglob("*.yml"))
    from evalkit.specs.registry import NOT_SPECS     # a folder of spec files: a registry's own files are not specs

    return [f for f in files if not (f.parent == path and f.name in NOT_SPECS) and "prices" not in f.relative_to(path).parts[:-1]]


def provider_rows() -> list[dict]:
    """Every provider `--model` accepts: the presets of providers.yaml, the in-process `local/`,
    and installed plug-ins, each with the variables it reads, its default URL and what it supports."""
    from evalkit.backends import PROVIDERS, plugins
    from evalkit.backends.local import LocalBackend
    from evalkit.backends.presets import registry_providers

    from evalkit.backends.costs import price_tables

    tables = price_tables()
    rows = [_preset_row(p, tables) for p in registry_providers().values() if p.name not in PROVIDERS]
    local = LocalBackend.capabilities
    rows.append({"name": "local", "kind": "in-process", "title": "A causal LM run in this process (evalkit[local])",
                 "base_url": None, "base_url_env": None, "key_env": [], "key_required": False,
                 "logprobs": local.logprobs, "max_top_logprobs": local.max_top_logprobs, "seed": local.seed,
                 "system_messages": local.system_messages, "images": local.images, "renames": {}, "prices": None,
                 "price_note": "none - runs on this machine", "docs": None,
                 "notes": ["Offline: a folder, a .gguf file or gemma-3-270m; no server, no key."], "models": [],
                 "sources": {}})
    rows += [{"name": name, "kind": "plug-in", "title": f"installed plug-in {target}", "base_url": None,
              "base_url_env": None, "key_env": [], "key_required": None, "logprobs": None, "max_top_logprobs": None,
              "seed": None, "system_messages": None, "images": None, "renames": {}, "prices": None,
              "price_note": "the plug-in's own", "docs": None, "notes": ["Its capabilities are the plug-in's own."],
              "models": [], "sources": {}}
             for name, target in plugins().items()]
    return [r for r in rows if r["kind"] == "plug-in" or r["name"] not in plugins()]   # a declared replacement wins


def _preset_row(p, tables: dict) -> dict:
    caps = p.capabilities
    return {"name": p.name, "kind": "local server" if p.local else ("azure" if p.client == "azure" else "hosted"),
            "title": p.title, "base_url": p.base_url, "base_url_env": p.base_url_env, "key_env": list(p.key_env),
            "key_required": p.key_required, "logprobs": caps.max_top_logprobs is not None,
            "max_top_logprobs": caps.max_top_logprobs, "seed": caps.seed, "system_messages": caps.system_messages,
            "images": caps.images, "renames": dict(p.renames), "prices": _prices(p, tables),
            "price_note": p.price_note or ("" if p.prices else "not recorded"), "docs": p.docs,
            "notes": list(p.notes), "models": [r.model_dump(mode="json") for r in p.models],
            "sources": {claim: {"url": s.url, "checked": s.checked.isoformat(), "says": s.says}
                        for claim, s in p.sources.items()}}


def _prices(p, tables: dict) -> dict | None:
    """The provider's price table in brief: where and when it was recorded, and which models it prices."""
    if not p.prices:
        return None
    table = tables.get(p.prices)
    if table is None:
        raise EvalkitError(f"{p.source_file}: provider {p.name}: prices: no price table named {p.prices!r} "
                           f"(known: {', '.join(sorted(tables)) or 'none'})")
    return {"table": table.name, "recorded": table.recorded, "source": table.url, "models": sorted(table.models)}

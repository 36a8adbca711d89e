"""Running an OpenAI Evals registry as it is: `evalkit run --registry PATH NAME`.

PATH is an OpenAI Evals `registry/` folder: `evals/**/*.yaml` (an alias entry `name: {id: ...}`
pointing at a spec entry `id: {class: ..., args: {...}}`), `data/` (the samples JSONL files the
args name), `modelgraded/*.yaml` (grader specs, read by evalkit.specs.graders unchanged) and
`eval_sets/*.yaml` (`set: {evals: [...]}`). Each supported entry becomes an evalkit EvalSpec, so
it runs with everything evalkit has (cache, resume, retries, intervals, reports):

| class                                   | evalkit scoring | request parameters, as OpenAI Evals 3.0.1 sends them |
|-----------------------------------------|-----------------|-------------------------------------------------------|
| basic.match:Match                       | oai_match       | temperature 0 (its max_tokens argument is never sent) |
| basic.includes:Includes                 | oai_includes    | nothing: the API's defaults                           |
| basic.fuzzy_match:FuzzyMatch            | oai_fuzzy (+f1) | temperature 0, max_tokens 100 (or args.max_tokens)    |
| basic.json_match:JsonMatch              | json            | temperature 0, max_tokens 512 (or args.max_tokens)    |
| modelgraded.classify:ModelBasedClassify | graded          | max_tokens 1024, then args.sample_kwargs              |
| multiple_choice:MultipleChoice (MMLU)   | oai_match       | temperature 0, max_tokens 1                           |

No seed is sent (OpenAI Evals sends none). Deliberate differences are listed in
docs/limitations.md ("OpenAI Evals registries"): the grader is asked at temperature 0, MultipleChoice keeps MMLU's
published option order. Everything else (other classes, a
MultipleChoice dataset that is not a local file, a model-graded spec that grades several inputs
at once or takes more than one completion) is refused with "not supported: ..." naming the entry.
The scorers' definitions are in evalkit/scoring/oaievals.py and evalkit/graders.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError, SpecError
from evalkit.specs.evals import EvalSpec, spec_model
from evalkit.core.yamlfile import load_yaml

PREFIX = "evals.elsuite."
# class -> (evalkit scoring, request parameters; "args" means args.max_tokens may replace the default)
CLASSES: dict[str, tuple[str, dict]] = {
    "basic.match:Match": ("oai_match", {"temperature": 0.0}),
    "basic.includes:Includes": ("oai_includes", {"temperature": None}),
    "basic.fuzzy_match:FuzzyMatch": ("oai_fuzzy", {"temperature": 0.0, "max_tokens": "args", "default": 100}),
    "basic.json_match:JsonMatch": ("json", {"temperature": 0.0, "max_tokens": "args", "default": 512}),
    "modelgraded.classify:ModelBasedClassify": ("graded", {"temperature": None, "max_tokens": 1024}),
    "multiple_choice:MultipleChoice": ("mc", {"temperature": 0.0, "max_tokens": 1}),
}


def _generation(params: dict, args: dict) -> dict:
    gen = {"temperature": params["temperature"], "send_seed": False, "stop": []}    # oaieval sends no stop
    if params.get("max_tokens") == "args":
        gen["max_tokens"] = args.get("max_tokens", params["default"])
    elif "max_tokens" in params:
        gen["max_tokens"] = params["max_tokens"]
    return gen


class NotSupported(EvalkitError):
    pass


@dataclass
class Entry:
    name: str
    body: dict
    file: Path


class OAIRegistry:
    def __init__(self, root: str | Path):
        root = Path(root)
        if (root / "registry" / "evals").is_dir():
            root = root / "registry"
        if not (root / "evals").is_dir():
            raise EvalkitError(f"--registry {root}: not an OpenAI Evals registry (no evals/ folder)")
        self.root = root
        self.entries: dict[str, Entry] = {}
        self.sets: dict[str, list[str]] = {}
        for path in sorted((root / "evals").rglob("*.yaml")):
            for name, body in self._load(path).items():
                if isinstance(body, dict):
                    self.entries[name] = Entry(name, body, path)
        for path in sorted((root / "eval_sets").glob("*.yaml")) if (root / "eval_sets").is_dir() else []:
            for name, body in self._load(path).items():
                if isinstance(body, dict) and isinstance(body.get("evals"), list):
                    self.sets[name] = [str(e) for e in body["evals"]]

    @staticmethod
    def _load(path: Path) -> dict:
        try:
            data = load_yaml(path, lenient=True).data      # as PyYAML reads it: a repeated key, the last wins
        except SpecError as exc:
            raise EvalkitError(exc.problems[0]) from None
        return data if isinstance(data, dict) else {}

    def names(self) -> list[str]:
        """The runnable names: alias entries (with `id`) and spec entries without an alias."""
        aliased = {e.body["id"] for e in self.entries.values() if "id" in e.body}
        return sorted(n for n, e in self.entries.items() if "id" in e.body or ("class" in e.body and n not in aliased))

    def expand(self, name: str) -> list[str]:
        """The name itself when it is an eval, else an eval set's members."""
        if name in self.entries:
            return [name]
        if name in self.sets:
            return list(self.sets[name])
        import difflib

        close = difflib.get_close_matches(name, list(self.entries) + list(self.sets), n=3)
        raise EvalkitError(f"no eval or eval set {name!r} in {self.root}"
                           + (f" (did you mean {', '.join(close)}?)" if close else ""))

    def spec_entry(self, name: str) -> tuple[Entry, Entry]:
        """(the entry named, the entry holding class and args), following `id`."""
        entry = self.entries.get(name)
        if entry is None:
            raise EvalkitError(f"no eval {name!r} in {self.root}")
        target = entry
        seen = {name}
        while "class" not in target.body:
            ref = target.body.get("id")
            if not ref or ref in seen or ref not in self.entries:
                raise EvalkitError(f"{target.file}: {target.name}: `id: {ref}` names no eval spec in the registry")
            seen.add(ref)
            target = self.entries[ref]
        return entry, target

    def resolve(self, name: str) -> EvalSpec:
        entry, target = self.spec_entry(name)
        cls = str(target.body["class"])
        short = cls.removeprefix(PREFIX)
        if short not in CLASSES:
            raise NotSupported(f"{name}: not supported: {cls} (evalkit runs {', '.join(PREFIX + c for c in CLASSES)})")
        method, params = CLASSES[short]
        args = dict(target.body.get("args") or {})
        where = f"{target.file}: {target.name}"
        spec: dict = {"name": name, "description": str(entry.body.get("description") or ""),
                      "source_file": str(target.file)}
        if method == "mc":
            return self._multiple_choice(spec, args, where)
        samples = args.get("samples_jsonl")
        if not samples:
            raise EvalkitError(f"{where}: args.samples_jsonl is missing")
        path = self.root / "data" / samples
        if not path.is_file():
            raise EvalkitError(f"{where}: samples file {path} not found")
        dataset: dict = {"format": "oaievals", "path": str(path), "split": "test"}
        prompt: dict = {"chat": True}
        if method == "oai_match" and int(args.get("num_few_shot") or 0) > 0:
            few = self.root / "data" / str(args.get("few_shot_jsonl") or "")
            if not few.is_file():
                raise EvalkitError(f"{where}: few_shot_jsonl {few} not found")
            dataset["fields"] = {"fewshot": str(few)}
            prompt["fewshot"] = {"split": "fewshot", "k": int(args["num_few_shot"]), "sampling": "first"}
        generation = _generation(params, args)
        scoring: dict = {"method": method}
        metrics = ["accuracy"]
        template = "match"
        if method == "oai_includes":
            scoring["ignore_case"] = bool(args.get("ignore_case", False))
        elif method == "oai_fuzzy":
            metrics = ["accuracy", "f1"]
        elif method == "graded":
            template, metrics = "model_graded", ["score"]
            if str(args.get("multicomp_n") or 1) != "1":
                raise NotSupported(f"{name}: not supported: {cls} with multicomp_n {args['multicomp_n']} "
                                   "(several completions per grading)")
            kwargs = args.get("sample_kwargs") or {}
            generation.update({k: kwargs[k] for k in ("max_tokens", "temperature") if k in kwargs})
            scoring.update({"grader": str(args.get("modelgraded_spec") or "").strip(),
                            "grader_fields": {str(k): str(v) for k, v in (args.get("modelgraded_spec_args") or {}).items()}})
            if args.get("eval_type"):
                scoring["eval_type"] = args["eval_type"]
            if not scoring["grader"]:
                raise EvalkitError(f"{where}: args.modelgraded_spec is missing")
            self._check_grader(name, scoring["grader"], cls)
        spec.update({"template": template, "dataset": dataset, "prompt": prompt, "generation": generation,
                     "scoring": scoring, "metrics": metrics})
        try:
            return spec_model().model_validate(spec)
        except ValueError as exc:
            raise EvalkitError(f"{where}: cannot be converted: {exc}") from None

    @functools.cached_property
    def graders(self):
        """The registry's modelgraded specs, read once (inventory checks 60-odd evals against them)."""
        from evalkit.specs.graders import GraderRegistry

        reg = GraderRegistry()
        folder = self.root / "modelgraded"
        for f in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            reg.add_file(f, lenient=True)
        return reg

    def _check_grader(self, name: str, grader: str, cls: str) -> None:
        reg = self.graders
        if grader not in reg.graders:
            bad = [p for p in reg.problems if f": {grader}" in p]
            reason = bad[0].split(": ", 2)[-1] if bad else "not found in modelgraded/"
            raise NotSupported(f"{name}: not supported: {cls} with modelgraded spec {grader} ({reason})")
        g = reg.graders[grader]
        if list(g.input_outputs.items()) != [("input", "completion")]:
            raise NotSupported(f"{name}: not supported: {cls} with modelgraded spec {grader}, which grades "
                               f"{len(g.input_outputs)} inputs at once")

    def _multiple_choice(self, spec: dict, args: dict, where: str) -> EvalSpec:
        """MultipleChoice reads Hugging Face datasets; the MMLU one (`hf://hendrycks_test?name=S&split=P`)
        is read from the local MMLU copy in the data root, in its original order. OpenAI Evals
        shuffles each question's options with a per-sample generator; evalkit keeps the published
        order, so the letters are the published answers (a stated difference)."""
        from urllib.parse import parse_qs, urlsplit

        dataset = str(args.get("dataset") or "")
        url = urlsplit(dataset)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        splits = {"validation": "val", "test": "test", "dev": "dev", "auxiliary_train": None}
        if url.scheme != "hf" or url.netloc != "hendrycks_test" or "name" not in query or \
                splits.get(query.get("split", "test")) is None:
            raise NotSupported(f"{spec['name']}: not supported: multiple_choice:MultipleChoice with dataset "
                               f"{dataset} (evalkit reads hf://hendrycks_test, MMLU, from its local copy only)")
        instructions = str(args.get("instructions") or "")
        spec.update({
            "template": "multiple_choice",
            "subset": query["name"],
            "dataset": {"format": "mmlu", "path": "mmlu", "split": splits[query.get("split", "test")]},
            "prompt": {"template": instructions + "\nPlease answer with the letter of the correct answer.\n\n"
                                   "{question}\n{choices}", "choice_format": "{label}) {text}"},
            "generation": _generation(CLASSES["multiple_choice:MultipleChoice"][1], {}),
            "scoring": {"method": "oai_match", "labels": "ABCD"},
        })
        spec["source_file"] = None          # the data is evalkit's MMLU, not a file of this registry
        return spec_model().model_validate(spec)

    def inventory(self) -> dict:
        """Every runnable name with its class and whether evalkit runs it (for `--list`)."""
        out = {}
        for name in self.names():
            try:
                _, target = self.spec_entry(name)
                cls = str(target.body.get("class"))
            except EvalkitError as exc:
                out[name] = {"class": None, "supported": False, "reason": exc.message}
                continue
            try:
                self.resolve(name)
                out[name] = {"class": cls, "supported": True, "reason": None}
            except EvalkitError as exc:
                out[name] = {"class": cls, "supported": False, "reason": exc.message}
        return out


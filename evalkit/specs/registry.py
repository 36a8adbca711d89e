"""Finding and resolving eval specs.

The registry is a set of folders, each holding `evals/*.yaml` (a spec file maps names to specs);
only `evals/` is read for specs, never the folder's other YAML. The package's own registry
(`registry/`) comes first, then plug-in packages' folders (entry points `evalkit.registries`),
then `EVALKIT_REGISTRY` (folders joined by `os.pathsep`; see `evalkit.core.places` and
`evalkit.core.plugins`). A plug-in's eval that takes a name already defined is refused with a
warning unless its entry point declares it replaces.
A spec file given by path (`evalkit run my_eval.yaml`) is read on top of the registry, so its specs
can `extends:` registry specs.

Names: `mmlu` is a spec; `mmlu.<subset>` is the same spec restricted to one of its
`dataset.subsets` (MMLU's subjects). Names contain no dots otherwise.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import EvalkitError, SpecError
from evalkit.specs.evals import EvalSpec, validate_spec
from evalkit.core.plugins import Folder, Origin, admit, sourced_files
from evalkit.core.yamlfile import YamlDoc, load_yaml

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")


# A registry's own files, which `evalkit validate FOLDER` skips in a folder of spec files.
NOT_SPECS = {"datasets.yaml", "providers.yaml"}


@dataclass
class RawSpec:
    name: str
    doc: YamlDoc
    data: dict

    @property
    def where(self) -> str:
        return f"{self.doc.path}:{self.doc.line((self.name,))}"


class Registry:
    """Raw specs by name, read from spec files; `resolve` turns a name into an `EvalSpec`."""

    def __init__(self) -> None:
        self.raw: dict[str, RawSpec] = {}
        self.problems: list[str] = []
        self.twice: dict[str, str] = {}     # a name two registry files define: where both are
        self.origins: dict[str, Origin] = {}   # for the precedence rule of plug-in folders

    # ------------------------------------------------------------------ loading
    @classmethod
    def default(cls) -> "Registry":
        reg = cls()
        for src, path in sourced_files("evals"):
            reg.add_file(path, source=src)
        return reg

    def add_file(self, path: Path, override: bool = False, source: Folder | None = None) -> list[str]:
        """Read one spec file; returns the names it defines. Problems are collected, not raised.
        `source` is the registry folder it is in (a plug-in's is held to the precedence rule)."""
        try:
            doc = load_yaml(path)
        except SpecError as exc:
            self.problems.extend(exc.problems)
            return []
        if not isinstance(doc.data, dict):
            self.problems.append(f"{path}:1: a spec file must be a mapping of eval names to specs")
            return []
        names = []
        for name, data in doc.data.items():
            line = doc.line((name,))
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.problems.append(f"{path}:{line}: {name!r}: eval names use letters, digits, '-' and '_' only")
                continue
            if not isinstance(data, dict):
                self.problems.append(f"{path}:{line}: {name}: a spec must be a mapping")
                continue
            if source is not None and not self._admitted(name, path, source):
                continue
            if name in self.raw and not override and not (source and source.plugin):
                self.problems.append(f"{path}:{line}: {name}: already defined at {self.raw[name].where}")
                self.twice[name] = f"{self.raw[name].where} and {path}:{line}"
                continue
            self.twice.pop(name, None)      # a file given by path is the one meant
            self.raw[name] = RawSpec(name, doc, data)
            names.append(name)
        return names

    def _admitted(self, name: str, path: Path, source: Folder) -> bool:
        if source.origin is None:
            self.origins.setdefault(name, Origin(str(path)))
            return True
        return admit("eval", name, source.origin, self.origins)

    # ------------------------------------------------------------------ resolving
    def names(self, include_abstract: bool = False) -> list[str]:
        return sorted(n for n, r in self.raw.items() if include_abstract or not r.data.get("abstract"))

    def resolve(self, name: str) -> EvalSpec:
        base, _, subset = name.partition(".")
        if base not in self.raw:
            raise EvalkitError(f"unknown eval {name!r}{self._suggest(name)}; `evalkit list` shows them all")
        if base in self.twice:
            raise EvalkitError(f"eval {base!r} is defined twice, at {self.twice[base]}; rename one "
                               "(`evalkit validate` checks a folder)")
        merged, origin = self._merge(base, [])
        raw = self.raw[base]
        if merged.get("abstract"):
            raise EvalkitError(f"{raw.where}: {base} is abstract (a base for `extends`), not runnable")
        spec = validate_spec(
            base, merged,
            lines_of=lambda loc: _nearest(origin, loc, raw)[1],
            file_of=lambda loc: _nearest(origin, loc, raw)[0],
        )
        spec = spec.model_copy(update={"source_file": str(raw.doc.path)})
        if subset:
            if subset not in spec.dataset.subsets:
                close = difflib.get_close_matches(subset, spec.dataset.subsets, n=3)
                hint = f" (did you mean {', '.join(base + '.' + c for c in close)}?)" if close else ""
                raise EvalkitError(f"unknown eval {name!r}: {base} has no subset {subset!r}{hint}")
            spec = spec.model_copy(update={"name": name, "subset": subset})
        return spec

    def _merge(self, name: str, chain: list[str]) -> tuple[dict, dict]:
        """The spec with its `extends` chain applied, and where each key path came from."""
        raw = self.raw[name]
        if name in chain:
            raise EvalkitError(f"{raw.where}: {name}: `extends` cycle: {' -> '.join(chain + [name])}")
        own_origin = {loc[1:]: (raw.doc.path, line) for loc, line in raw.doc.lines.items() if loc[:1] == (name,)}
        parent = raw.data.get("extends")
        if parent is None:
            return dict(raw.data), own_origin
        if parent not in self.raw:
            line = raw.doc.line((name, "extends"))
            raise EvalkitError(f"{raw.doc.path}:{line}: {name}.extends: unknown eval {parent!r}{self._suggest(parent)}")
        if parent in self.twice:
            line = raw.doc.line((name, "extends"))
            raise EvalkitError(f"{raw.doc.path}:{line}: {name}.extends: eval {parent!r} is defined twice, at "
                               f"{self.twice[parent]}; rename one")
        base, origin = self._merge(parent, chain + [name])
        base.pop("abstract", None)
        merged = _deep_merge(base, raw.data)
        origin = {**origin, **own_origin}
        return merged, origin

    def merged(self, name: str) -> dict:
        """A spec's raw data with its `extends` chain applied (not yet validated)."""
        return self._merge(name, [])[0]

    @staticmethod
    def _data_problems(spec: EvalSpec, raw: RawSpec) -> list[str]:
        """A data file the spec names beside itself (`./...`) must exist (evalkit.cli.validate reads
        the data itself)."""
        path, source = spec.dataset.path, spec.source_file
        assert source is not None           # the registry names every spec's file
        if not path.startswith(("./", "../")) or (Path(source).parent / path).exists():
            return []
        line = raw.doc.line((raw.name, "dataset", "path"))
        return [f"{raw.doc.path}:{line}: {raw.name}.dataset.path: {path} does not exist "
                f"(looked at {(Path(source).parent / path).resolve()})"]

    def rows(self) -> list[dict]:
        """One row per runnable eval for `evalkit list`: name, scorer, description, subsets, file."""
        rows = []
        for name in self.names():
            merged = self.merged(name)
            dataset = d if isinstance(d := merged.get("dataset"), dict) else {}
            scoring = s if isinstance(s := merged.get("scoring"), dict) else {}
            rows.append({"kind": "eval", "name": name, "template": merged.get("template") or scoring.get("method"),
                         "description": merged.get("description", ""), "subsets": len(dataset.get("subsets") or []),
                         "file": str(self.raw[name].doc.path)})
        return rows

    def _suggest(self, name: str) -> str:
        candidates = list(self.raw)
        for n, r in self.raw.items():
            subsets = (r.data.get("dataset") or {}).get("subsets") if isinstance(r.data.get("dataset"), dict) else None
            if isinstance(subsets, list):
                candidates += [f"{n}.{s}" for s in subsets if isinstance(s, str)]
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        return f" (did you mean {', '.join(close)}?)" if close else ""


def _nearest(origin: dict, loc, raw: RawSpec) -> tuple[Path, int]:
    loc = tuple(loc)
    while loc:
        if loc in origin:
            return origin[loc]
        loc = loc[:-1]
    return raw.doc.path, raw.doc.line((raw.name,))


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if key == "extends":
            continue
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_registry(spec_paths: list[str] | None = None) -> tuple[Registry, list[str]]:
    """The default registry plus spec files given by path; returns it and the names those files define."""
    reg = Registry.default()
    named: list[str] = []
    for p in spec_paths or []:
        named += reg.add_file(Path(p), override=True)
    return reg, named

"""Reading YAML files that users and other projects write, safely, with the line of every key.

Every YAML file evalkit reads (eval specs, exams, graders, prices, an OpenAI Evals registry) goes
through `load_yaml`, which:

- parses with the safe loader (libyaml's when PyYAML has it: same nodes and marks, ~10x faster);
- records the 1-based line of every key and item, so a problem is reported as `file:line: ...`;
- refuses what a hostile or broken file can do to a naive loader: a file over `MAX_BYTES`, an
  alias that contains itself (infinite recursion), nesting deeper than `MAX_DEPTH`, and alias
  expansion past `MAX_NODES` built values (a 600-byte "billion laughs" file would otherwise build
  10^9 objects);
- treats duplicate keys as errors (strict) or lets the last one win as PyYAML does (`lenient`,
  for files of another project whose readers accept them).

`load_definitions` reads a file that maps names to definitions of a pydantic model (exams,
graders) and reports each problem with its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, cast

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from evalkit.core.errors import SpecError

Loc = tuple  # a path into the YAML document: ("mmlu", "dataset", "path")
MAX_BYTES = 64 * 1024 * 1024
MAX_NODES = 1_000_000
MAX_DEPTH = 100

_SCALAR = yaml.SafeLoader("")  # used only to resolve scalar tags (int, float, bool, null)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Strict(BaseModel):
    """The base of every typed definition: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class YamlDoc:
    """A parsed YAML file: plain Python data plus the 1-based line of every key and item."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return 1


def load_yaml(path: str | Path, lenient: bool = False) -> YamlDoc:
    """Parse a YAML file into plain data, recording lines. Every problem raises `SpecError`."""
    path = Path(path)
    text = _read(path)
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError([f"{path}:{mark.line + 1 if mark else 1}: YAML syntax error: {exc.problem or exc}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}:1: YAML syntax error: {exc}"]) from None
    except RecursionError:
        raise SpecError([f"{path}:1: nested too deeply to read"]) from None
    if node is None:
        raise SpecError([f"{path}:1: the file is empty"])
    size = _expanded_size(node, {}, set(), path)
    if size > MAX_NODES:
        raise SpecError([f"{path}:1: aliases expand to {size:,} values, more than {MAX_NODES:,}; refusing to "
                         "build the file (a YAML bomb?)"])
    builder = _Builder(path, lenient)
    doc = YamlDoc(path=path, data=None, lines=builder.lines)
    doc.data = builder.build(node, ())
    if builder.problems:
        raise SpecError(builder.problems)
    return doc


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SpecError([f"{path}: {path.stat().st_size:,} bytes is too large for a YAML file "
                             f"(at most {MAX_BYTES // 2**20} MiB)"])
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}: file not found"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})"]) from None
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror or exc}"]) from None


def _expanded_size(node: yaml.Node, memo: dict[int, int], open_: set[int], path: Path) -> int:
    """How many values building `node` would make, aliases expanded; counted once per distinct node,
    so it costs as much as the file is long, not as much as its expansion."""
    if id(node) in memo:
        return memo[id(node)]
    if id(node) in open_:
        raise SpecError([f"{path}:{node.start_mark.line + 1}: an alias refers to a value that contains it"])
    if len(open_) > MAX_DEPTH:
        raise SpecError([f"{path}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep"])
    open_.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    size = 1 + sum(_expanded_size(c, memo, open_, path) for c in children)
    open_.discard(id(node))
    memo[id(node)] = size
    return size


class _Builder:
    """Nodes -> plain data, with the line of every key (the size and cycles were checked before)."""

    def __init__(self, path: Path, lenient: bool):
        self.path, self.lenient = path, lenient
        self.lines: dict[Loc, int] = {}
        self.problems: list[str] = []

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            return _SCALAR.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, loc + (i,)) for i, item in enumerate(node.value)]
        return self._mapping(cast(yaml.MappingNode, node), loc)   # the composer makes only these three kinds

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append(f"{self.path}:{line}: YAML merge keys (<<) are not supported; use `extends`")
                continue
            key = self.build(key_node, loc)
            if isinstance(key, (dict, list)):
                self.problems.append(f"{self.path}:{line}: {dotted(loc)}: a key must be a plain value")
                continue
            if key in out and not self.lenient:
                self.problems.append(f"{self.path}:{line}: {dotted(loc + (key,))}: duplicate key")
            self.lines[loc + (key,)] = line
            out[key] = self.build(value_node, loc + (key,))
        return out


def dotted(loc: Loc) -> str:
    parts: list[str] = []
    for p in loc:
        parts.append(f"[{p}]" if isinstance(p, int) else ("." if parts else "") + str(p))
    return "".join(parts)


def error_text(err: Mapping[str, Any]) -> str:
    """One pydantic error in evalkit's words."""
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required field is missing"
    return err["msg"].removeprefix("Value error, ")


_PARSED: dict[tuple, YamlDoc | SpecError] = {}     # definition files read so far, by path and stat
_PARSED_MAX = 512


def _parsed(path: Path, lenient: bool) -> YamlDoc:
    """`load_yaml(path)`, parsed once per process while the file is unchanged (same size and
    modification time): providers and price tables are looked up for every eval of a run, and a
    run of the whole OpenAI Evals registry spent a fifth of its time parsing them again."""
    try:
        st = Path(path).stat()
        key = (str(path), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, lenient)
    except OSError:
        return load_yaml(path, lenient=lenient)     # says what is wrong with the path
    if key not in _PARSED:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        try:
            _PARSED[key] = load_yaml(path, lenient=lenient)
        except SpecError as exc:
            _PARSED[key] = exc
    found = _PARSED[key]
    if isinstance(found, SpecError):
        raise SpecError(list(found.problems))
    return found


def load_definitions(path: Path, model: type[BaseModel], kind: str, lenient: bool = False,
                     only=None) -> tuple[dict, list[str]]:
    """A YAML file mapping names to definitions of `model` (exams, graders): the valid ones by name,
    and one `file:line: name.field: message` per problem. Each gets `name` and `source_file`. The
    parsed file is shared between calls (see `_parsed`); it is only read here, never changed.
    `only(body)`, when given, picks the definitions this call reads (a file of two kinds)."""
    try:
        doc = _parsed(path, lenient)
    except SpecError as exc:
        return {}, exc.problems
    if not isinstance(doc.data, dict):
        return {}, [f"{path}:1: a {kind} file is a mapping from {kind} name to definition"]
    found, problems = {}, []
    for name, body in doc.data.items():
        if only is not None and isinstance(body, dict) and not only(body):
            continue
        if not isinstance(body, dict):
            problems.append(f"{path}:{doc.line((name,))}: {name}: a {kind} definition must be a mapping")
            continue
        try:
            found[name] = model.model_validate({**body, "name": name, "source_file": str(path)})
        except ValidationError as exc:
            for err in exc.errors():
                loc = (name,) + tuple(err["loc"])   # model-level errors sit at the definition's own line
                problems.append(f"{path}:{doc.line(loc)}: {dotted(loc)}: {error_text(err)}")
    return found, problems

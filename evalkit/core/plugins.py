"""One registry for every pluggable kind: what is built in, what plug-ins add, and who wins.

Code kinds (scorers, loaders, backends) are `Registry` objects: a table of built-in names,
each the dotted path of the code that serves it, imported only when it is asked for, and an
entry-point group of installed packages. Definition kinds (evals, exams, graders, providers,
prices, datasets) are read from registry folders by kind (`sources`, `files_of`); a package
ships a folder through the entry-point group `evalkit.registries`.

One precedence rule, for every kind:

- built-ins win. A plug-in that takes a built-in name without declaring it is refused with one
  warning line naming the plug-in, its entry point and its package;
- a plug-in declares a replacement with an entry-point name ending in `.replaces`
  (`jsonl.replaces = "mypkg.lines"`) or, for a scorer, `@scorer(..., replaces=True)`; it then
  serves that name, and a run that uses it records which code did (`Origin.record`);
- of two plug-ins taking one new name, the first found is kept and the second refused.

A plug-in that fails to import is one warning line and is skipped; the rest of evalkit works.
EVALKIT_REGISTRY folders are the user's own and replace package definitions as before.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.core.errors import EvalkitError, SpecError, warn

MARKER = ".replaces"           # an entry-point name ending in this replaces the built-in of that name
REGISTRIES_GROUP = "evalkit.registries"


@dataclass(frozen=True)
class Origin:
    """Where one registered thing comes from."""

    module: str                     # the code's dotted path ("evalkit.scoring.match", "pkg.mod:Class")
    entry_point: str | None = None  # "group:name" for a plug-in, None for a built-in
    package: str | None = None      # the plug-in's distribution
    replaces: bool = False          # the plug-in declared it replaces a built-in

    @property
    def builtin(self) -> bool:
        return self.entry_point is None

    def describe(self) -> str:
        return f"plug-in {self.package or '?'} (entry point {self.entry_point} = {self.module})"

    def record(self) -> dict:
        """What a run log keeps about code that is not evalkit's own."""
        return {"module": self.module, "package": self.package, "entry_point": self.entry_point,
                "replaces": self.replaces}


@dataclass(frozen=True)
class Plugin:
    """One entry point of an evalkit group, read without importing it."""

    name: str                       # the name it registers (marker removed)
    value: str
    origin: Origin


def plugins_of(group: str) -> list[Plugin]:
    """The entry points of `group` in every installed distribution, in discovery order."""
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group=group):
        replaces = ep.name.endswith(MARKER)
        name = ep.name[: -len(MARKER)] if replaces else ep.name
        dist = getattr(ep, "dist", None)
        package = dist.metadata["Name"] if dist is not None else None
        found.append(Plugin(name, ep.value, Origin(ep.value, f"{group}:{ep.name}", package, replaces)))
    return found


def broken(origin: Origin, exc: BaseException) -> None:
    """The one warning line of a plug-in that cannot be imported."""
    why = str(exc).splitlines()[0] if str(exc) else ""
    warn(f"{origin.describe()} failed to import, skipped: {type(exc).__name__}: {why}".rstrip(": "))


def admit(kind: str, name: str, new: Origin, known: dict[str, Origin]) -> bool:
    """The precedence rule: may `new` serve `name` given what already does? Records it if so."""
    old = known.get(name)
    if old is None or (old.builtin and new.replaces and not new.builtin):
        known[name] = new
        return True
    if new.builtin:                  # evalkit's own, read later (a user's folder): as before, it wins
        known[name] = new
        return True
    why = ("a built-in name, without declaring it replaces it (entry-point name "
           f"'{name}{MARKER}', or replaces=True); refused" if old.builtin
           else f"already taken by {old.describe()}; refused")
    warn(f"{new.describe()} registers {kind} {name!r}, {why}")
    return False


def import_target(target: str) -> Any:
    """A module ("pkg.mod") or an attribute of one ("pkg.mod:Name")."""
    module, _, attr = target.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


class Registry:
    """One code kind. `builtins` is the dotted path of a function listing evalkit's own (name ->
    dotted target), imported only when the kind is first asked for; entry points of `group` add
    more. With `self_registering`, a target is a module that registers its things by calling
    `register` when imported (scorers), and every module is imported on first use. With
    `fixed=False` the built-ins are listed again on every call (backends: the presets follow
    EVALKIT_REGISTRY)."""

    def __init__(self, kind: str, group: str, builtins: str, self_registering: bool = False,
                 fixed: bool = True) -> None:
        self.kind, self.group, self.builtins = kind, group, builtins
        self.self_registering, self.fixed = self_registering, fixed
        self._origins: dict[str, Origin] | None = None
        self._plugins: list[Plugin] | None = None
        self._objects: dict[str, Any] = {}
        self._registered: list[tuple[str, Any, Origin]] = []
        self._loading: Origin | None = None

    # ------------------------------------------------------------------ the table
    def plugins(self) -> list[Plugin]:
        if self._plugins is None:
            self._plugins = plugins_of(self.group)
        return self._plugins

    def origins(self) -> dict[str, Origin]:
        """name -> the code that serves it, after the precedence rule."""
        if self._origins is not None and (self.fixed or self.self_registering):
            return self._origins
        known: dict[str, Origin] = {}
        if self.self_registering:
            self._import_all()
            done = sorted(self._registered, key=lambda r: not r[2].builtin)   # built-ins first
            self._objects = {name: obj for name, obj, origin in done if admit(self.kind, name, origin, known)}
        else:
            for name, target in import_target(self.builtins)().items():
                admit(self.kind, name, Origin(target), known)
            for p in self.plugins():
                admit(self.kind, p.name, p.origin, known)
        self._origins = known
        return known

    def names(self) -> list[str]:
        return list(self.origins())

    def origin(self, name: str) -> Origin:
        return self.origins()[name]

    def __contains__(self, name: str) -> bool:
        return name in self.origins()

    def get(self, name: str) -> Any:
        """The thing `name` names; KeyError when nothing does, EvalkitError when its code is broken."""
        origin = self.origins()[name]
        if self.self_registering:
            return self._objects[name]
        try:
            return import_target(origin.module)
        except Exception as exc:   # a plug-in's code is untrusted: say whose it is
            who = origin.module if origin.builtin else origin.describe()
            raise EvalkitError(f"{self.kind} {name!r}: cannot import {who}: {type(exc).__name__}: {exc}") from None

    def items(self) -> list[tuple[str, Any]]:
        return [(name, self.get(name)) for name in self.names()]

    # ------------------------------------------------------------------ self-registering modules
    def register(self, name: str, obj: Any, module: str, replaces: bool = False) -> None:
        """Called by a module as it is imported (`@scorer`); the registry knows whose it is."""
        loading = self._loading if self._loading is not None and not module.startswith("evalkit.") else None
        origin = (Origin(module, loading.entry_point, loading.package, replaces) if loading else Origin(module))
        self._registered.append((name, obj, origin))
        self._origins = None

    def _import_all(self) -> None:
        for target in import_target(self.builtins)().values():
            importlib.import_module(target)       # evalkit's own: a failure is evalkit's bug
        for p in self.plugins():
            self._loading = p.origin
            try:
                importlib.import_module(p.value.partition(":")[0])
            except Exception as exc:
                broken(p.origin, exc)
            finally:
                self._loading = None


def package_modules(package: str, skip: frozenset[str] | set[str] = frozenset()) -> dict[str, str]:
    """A package folder's public modules, name -> dotted path, found without importing them."""
    import importlib.util
    import pkgutil

    spec = importlib.util.find_spec(package)
    paths = list(spec.submodule_search_locations or []) if spec else []
    return {m.name: f"{package}.{m.name}" for m in pkgutil.iter_modules(paths)
            if not m.name.startswith("_") and m.name not in skip}


# ---------------------------------------------------------------------- registry folders

@dataclass(frozen=True)
class Folder:
    """One registry folder and whose it is: the package's, a plug-in's, or the user's."""

    root: Path
    origin: Origin | None = None     # None: evalkit's own or the user's (EVALKIT_REGISTRY)
    user: bool = False

    @property
    def plugin(self) -> bool:
        return self.origin is not None


FOLDER_KINDS = {"evals": True, "exams": False, "graders": False, "prices": False}   # kind -> read recursively
FILE_KINDS = {"providers": "providers.yaml", "datasets": "datasets.yaml"}


def sources() -> list[Folder]:
    """The package's registry, then plug-ins' (entry-point group `evalkit.registries`), then the
    user's EVALKIT_REGISTRY folders."""
    from evalkit.core.places import package_registry, user_registries

    found = [Folder(package_registry())]
    for p in plugins_of(REGISTRIES_GROUP):
        try:
            root = _registry_root(p.value)
        except Exception as exc:
            broken(p.origin, exc)
            continue
        found.append(Folder(root, p.origin))
    return found + [Folder(root, user=True) for root in user_registries()]


def _registry_root(value: str) -> Path:
    """An entry point's value names a package whose folder is the registry ("pkg.registry")."""
    from importlib import resources

    root = Path(str(resources.files(value.partition(":")[0])))
    if not root.is_dir():
        raise EvalkitError(f"{root} is not a folder")
    return root


def files_of(kind: str, root: Path) -> list[Path]:
    """The files of one kind in one registry folder: `evals/**.yaml`, `exams/*.yaml`, ...,
    `providers.yaml`, `datasets.yaml`; never any other YAML there."""
    if kind in FILE_KINDS:
        path = root / FILE_KINDS[kind]
        return [path] if path.is_file() else []
    folder = root / kind
    if not folder.is_dir():
        return []
    if FOLDER_KINDS[kind]:
        return sorted(folder.rglob("*.yaml")) + sorted(folder.rglob("*.yml"))
    return sorted(folder.glob("*.y*ml"))


def sourced_files(kind: str) -> list[tuple[Folder, Path]]:
    return [(src, path) for src in sources() for path in files_of(kind, src.root)]


def definitions(kind: str, label: str, read) -> dict:
    """Every definition of a registry kind (`prices`, `providers`, `datasets`), in folder order:
    the package's, plug-ins', then EVALKIT_REGISTRY's, each file admitted by `admit_definitions`.
    `read(path, found_so_far) -> (defs, problems)` reads one file; any problem is a SpecError
    (one `file:line: ...` line each)."""
    found: dict = {}
    origins: dict[str, Origin] = {}
    for src, path in sourced_files(kind):
        defs, problems = read(path, found)
        if problems:
            raise SpecError(problems)
        found.update(admit_definitions(label, src, defs, origins))
    return found


def admit_definitions(kind: str, src: Folder, defs: dict, known: dict[str, Origin]) -> dict:
    """The definitions of one file that may go in: a plug-in folder's that take a package
    definition's name are refused unless the folder's entry point declares it replaces; the
    user's EVALKIT_REGISTRY folders replace by name, as they always have."""
    if src.origin is None:
        known.update({name: Origin(str(src.root)) for name in defs})
        return defs
    return {name: d for name, d in defs.items()
            if admit(kind, name, Origin(src.origin.module, src.origin.entry_point, src.origin.package,
                                        src.origin.replaces), known)}


# ---------------------------------------------------------------------- the code kinds
SCORERS = Registry("scorer", "evalkit.scorers", "evalkit.scoring:builtin_scorers", self_registering=True)
LOADERS = Registry("dataset format", "evalkit.loaders", "evalkit.loaders:builtin_formats")
BACKENDS = Registry("provider", "evalkit.backends", "evalkit.backends:builtin_providers", fixed=False)


def plugin_code(scorer: str, loader: str, provider: str) -> dict[str, dict]:
    """The plug-in code one run uses (kind -> `Origin.record`), empty when it is all evalkit's:
    what the run log's header keeps, so a gate can tell which code scored, loaded and answered."""
    used = {}
    for kind, registry, name in (("scorer", SCORERS, scorer), ("loader", LOADERS, loader),
                                 ("backend", BACKENDS, provider)):
        origin = registry.origins().get(name)
        if origin is not None and not origin.builtin:
            used[kind] = {"name": name, **origin.record()}
    return used


def replaced_notes(used: dict[str, dict]) -> list[str]:
    """One summary note per built-in a plug-in replaced in this run."""
    return [f"{kind} {u['name']!r} is the plug-in {u['package']}'s {u['module']}, replacing evalkit's own"
            for kind, u in used.items() if u["replaces"]]

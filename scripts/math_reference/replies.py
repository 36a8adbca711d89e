"""Generated model replies for a reference answer, one per LaTeX variant class, each labelled with
what it means (True: the reply's final answer equals the reference, False: it does not, None:
the reply gives no final answer a careful reader would accept).

The classes are the ways models write answers: the reference boxed as is, `\\dfrac`, spaces,
`\\left(`/`\\right)`, a unit or `^\\circ`, trailing text, several boxes, an unclosed box,
"Answer:" and "The final answer is" lines, `\\fbox`, `a/b` and decimals for fractions, `x = `,
thousands commas, `bmatrix` for `pmatrix`, a flipped interval bracket and plain wrong numbers.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

Variant = Callable[[str], "tuple[str, bool | None] | None"]
_INT = re.compile(r"-?\d+")
_FRAC = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}")


def _box(x: str) -> str:
    return f"Working through the cases gives the result.\n\n$\\boxed{{{x}}}$"


def _is_list(g: str) -> bool:
    """A comma-separated list of answers (not a tuple, interval or number with thousands commas)."""
    return ("," in g and g[:1] not in "([{\\" and "\n" not in g and not any(c in g for c in "[]()")
            and not re.search(r"\d,(\\!)?\s*\d{3}", g))


def _spaced(g: str) -> str | None:
    out = re.sub(r"\s+", "", g)
    out = re.sub(r"([,+=<>]|(?<=\w)-)", r" \1 ", out)
    return out if out != g else None


def _left_right(g: str) -> str | None:
    if "\\left" in g or g[:1] not in "([" or g[-1:] not in ")]":
        return None
    return "\\left" + g[0] + g[1:-1] + "\\right" + g[-1]


def _flip(g: str) -> str | None:
    if re.fullmatch(r"[\[(].*,.*[\])]", g) and "\\" not in g.replace("\\infty", ""):
        return ("[" if g[0] == "(" else "(") + g[1:]
    return None


def _decimal(g: str) -> str | None:
    m = _FRAC.fullmatch(g)
    if not m or int(m[3]) == 0:
        return None
    return f"{(-1 if m[1] else 1) * int(m[2]) / int(m[3]):.4f}".rstrip("0").rstrip(".")


def _slash(g: str) -> str | None:
    m = _FRAC.fullmatch(g)
    return f"{m[1]}{m[2]}/{m[3]}" if m else None


VARIANTS: dict[str, Variant] = {
    "boxed": lambda g: (_box(g), True),
    "dfrac": lambda g: (_box(g.replace("\\frac", "\\dfrac")), True) if "\\frac" in g else None,
    "spaces": lambda g: (_box(s), True) if (s := _spaced(g)) else None,
    "left-right": lambda g: (_box(s), True) if (s := _left_right(g)) else None,
    "unit-text": lambda g: (_box(g + "\\text{ cm}"), True) if _INT.fullmatch(g) else None,
    "degrees": lambda g: (_box(g + "^\\circ"), True) if _INT.fullmatch(g) else None,
    "trailing-text": lambda g: (f"So $\\boxed{{{g}}}$ is the answer. Checking the edge cases confirms it.", True),
    "several-boxes": lambda g: (f"A guess: $\\boxed{{12345}}$. Redoing it carefully: $\\boxed{{{g}}}$.", True)
    if g != "12345" else None,
    "unclosed-box": lambda g: (f"Hence the answer is $\\boxed{{{g}", None),
    "answer-line": lambda g: (f"The computation is complete.\nAnswer: ${g}$", True) if "\n" not in g else None,
    "final-answer-is": lambda g: (f"Final Answer: The final answer is ${g}$. I hope it is correct.", True)
    if "\n" not in g else None,
    "fbox": lambda g: (f"Therefore $\\fbox{{{g}}}$.", True),
    "slash": lambda g: (_box(s), True) if (s := _slash(g)) else None,
    "decimal": lambda g: (_box(s), float(s) * int(_FRAC.fullmatch(g)[3]) == int(_FRAC.fullmatch(g)[2]) * (-1 if g[0] == "-" else 1))
    if (s := _decimal(g)) else None,
    "x-equals": lambda g: (_box("x = " + g), True) if _INT.fullmatch(g) else None,
    "thousands": lambda g: (_box(f"{int(g):,}"), True) if _INT.fullmatch(g) and abs(int(g)) >= 1000 else None,
    "bmatrix": lambda g: (_box(g.replace("pmatrix", "bmatrix")), True) if "pmatrix" in g else None,
    "flipped-bracket": lambda g: (_box(s), False) if (s := _flip(g)) else None,
    # Equal in value, but MATH asks for fractions in lowest terms, and both authors' graders refuse it.
    "unreduced": lambda g: (_box(f"{m[1]}\\frac{{{2 * int(m[2])}}}{{{2 * int(m[3])}}}"), False)
    if (m := _FRAC.fullmatch(g)) else None,
    "sqrt-no-braces": lambda g: (_box(s), True) if (s := re.sub(r"\\sqrt\{(\d)\}", r"\\sqrt\1", g)) != g else None,
    "reordered-list": lambda g: (_box(", ".join(reversed(parts))), True)
    if _is_list(g) and len(parts := [p.strip() for p in g.split(",")]) > 1 else None,
    "percent": lambda g: (_box(g + "\\%"), True) if _INT.fullmatch(g) else None,
    "dollars": lambda g: (_box("\\$" + g), True) if _INT.fullmatch(g) else None,
    "text-wrapped": lambda g: (_box("\\text{" + g + "}"), True) if re.fullmatch(r"[A-Za-z ]+", g) else None,
    "wrong-number": lambda g: (_box(str(int(g) + 1)), False) if _INT.fullmatch(g) else None,
    "wrong-other": lambda g: (_box(g + "+1"), False) if not _INT.fullmatch(g) and "\n" not in g and "," not in g else None,
}


def replies(references: list[str]) -> Iterator[tuple[str, str, str, bool | None]]:
    """(variant, reference, reply, meaning) for every reference and every variant that applies."""
    for ref in references:
        for name, make in VARIANTS.items():
            got = make(ref)
            if got is not None:
                yield name, ref, got[0], got[1]

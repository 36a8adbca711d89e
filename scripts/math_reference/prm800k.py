"""PRM800K's MATH grader (Lightman et al. 2023): the MATH normalisation first, then its own
normalisation and a sympy check of the difference, strict for integers and unreduced fractions."""

from __future__ import annotations

import re

from . import hendrycks

_BAD_SUBSTRINGS = ("^{", "^(")
_BAD_REGEXES = (r"\^[0-9]+\^", r"\^[0-9][0-9]+")
_TUPLE_CHARS = "()[]"
_UNITS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week", "month",
          "year", "foot", "feet", "inch", "yard")
_TEXT = re.compile(r"^\\text\{(?P<text>.+?)\}$")


def mathd_normalize(answer: str | None) -> str | None:
    """`math_normalize.normalize_answer`: an enclosing `\\text{}` dropped, then Hendrycks' strip."""
    if answer is None:
        return None
    answer = answer.strip()
    try:
        m = _TEXT.search(answer)
        if m is not None:
            answer = m.group("text").strip()
        return hendrycks.strip_string(answer)
    except Exception:       # noqa: BLE001 - upstream's bare except
        return answer


def _sympy_parse(expr: str):
    from sympy.parsing import sympy_parser

    return sympy_parser.parse_expr(expr.replace("^", "**"), transformations=(
        sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)))


def _latex_to_text(expr: str) -> str:
    from pylatexenc import latex2text

    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac")
    expr = latex2text.LatexNodes2Text().latex_to_text(expr)
    for sym, word in (("√", "sqrt"), ("π", "pi"), ("∞", "inf"), ("∪", "U"), ("·", "*"), ("×", "*")):
        expr = expr.replace(sym, word)
    return expr.strip()


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(x: float) -> bool:
    try:
        return abs(x - int(round(x))) <= 1e-7
    except (OverflowError, ValueError):
        return False


def _is_frac(expr: str) -> bool:
    return bool(re.search(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$", expr))


def _strip_commas(expr: str) -> str:
    """Thousands commas out (`1,000` -> `1000`), tuple commas kept."""
    pattern = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
    while True:
        nxt = pattern.sub(r"\1\3\4", expr)
        if nxt == expr:
            return nxt
        expr = nxt


def _str_is_int(x: str) -> bool:
    try:
        return _is_int(float(_strip_commas(x)))
    except ValueError:
        return False


def normalize(expr: str | None) -> str | None:
    if expr is None:
        return None
    m = _TEXT.search(expr)
    if m is not None:
        expr = m.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for unit in _UNITS:
        expr = re.sub(f"{unit}(es)?(s)? *(\\^[0-9]+)?", "", expr)
    expr = re.sub(r"\^ *\\circ", "", expr)
    if expr and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    if _is_float(expr) and _is_int(float(expr)):
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        try:
            expr = _latex_to_text(expr)
        except Exception:   # noqa: BLE001 - upstream's bare except
            pass
    expr = re.sub("- *", "-", expr)
    expr = re.sub("([0-9]) +([0-9])", r"\1+\2", expr)          # a mixed number 7 3/4 -> 7+3/4
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _str_is_int(expr):
        expr = str(int(float(expr.replace(",", ""))))
    return expr


def _may_evaluate(expr: str) -> bool:
    letters = {c for c in expr.replace("sqrt", "").replace("frac", "") if c.isalpha()}
    return (len(letters) <= 2 and not any(b in expr for b in _BAD_SUBSTRINGS)
            and not any(re.search(r, expr) for r in _BAD_REGEXES))


def equal_under_sympy(reference: str, given: str) -> bool:
    import sympy

    try:
        expr = f"({reference})-({given})"
        return _may_evaluate(expr) and sympy.simplify(_sympy_parse(expr)) == 0
    except Exception:       # noqa: BLE001 - upstream's bare except
        return False


def split_tuple(expr: str) -> list[str]:
    expr = _strip_commas(expr)
    if not expr:
        return []
    if (len(expr) > 2 and expr[0] in _TUPLE_CHARS and expr[-1] in _TUPLE_CHARS
            and all(c not in expr[1:-1] for c in _TUPLE_CHARS)):
        return [e.strip() for e in expr[1:-1].split(",")]
    return [expr]


def _elements_equal(ref: str, got: str) -> bool:
    if _is_frac(ref) and _is_frac(got):
        return ref == got                    # an unreduced fraction must be written as the reference
    if _str_is_int(ref) != _str_is_int(got):
        return False                         # an integer reference wants a plain match
    return equal_under_sympy(ref, got)


def grade_answer(given: str | None, reference: str) -> bool:
    if given is None:
        return False
    if mathd_normalize(reference) == mathd_normalize(given):
        return True
    ref, got = normalize(reference), normalize(given)
    if ref is None:
        return False
    if ref == got:
        return True
    if not got:
        return False
    ref_elems, got_elems = split_tuple(ref), split_tuple(got)
    if len(ref_elems) > 1 and (ref[0] != got[0] or ref[-1] != got[-1]):
        return False
    if len(ref_elems) != len(got_elems):
        return False
    return all(_elements_equal(r, g) for r, g in zip(ref_elems, got_elems))

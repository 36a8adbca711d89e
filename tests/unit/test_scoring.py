"""Answer extraction tables: letters from chat replies, numbers, and the match family."""

import pytest

from evalkit.backends.base import Completion
from evalkit.core.sample import Sample
from evalkit.scoring import ScoreInput, get_scorer
from evalkit.scoring.choice import extract_letter
from evalkit.scoring.text import parse_number

OPTIONS = ("London", "Berlin", "Paris", "Madrid")


@pytest.mark.parametrize("reply, letter", [
    ("C", "C"),
    ("(C)", "C"),
    ("[C]", "C"),
    ("C.", "C"),
    ("C)", "C"),
    ("C. Paris", "C"),
    ("C: Paris is the capital", "C"),
    ("c", "C"),
    ("(c)", "C"),
    (" C\n", "C"),
    ("The answer is C", "C"),
    ("The answer is C.", "C"),
    ("the answer is (c)", "C"),
    ("Answer: C", "C"),
    ("answer: c", "C"),
    ("The correct answer is: C. Paris", "C"),
    ("The answer is therefore [C]", "C"),
    ("Option C", "C"),
    ("**C**", "C"),
    ("Paris", "C"),
    ("paris.", "C"),
    ("I think C is right because Paris is the capital.", "C"),
    ("Let me think. A is wrong, B is wrong. So the answer is C.", "C"),
    ("Answer: B\nWait, no. Answer: C", "C"),
    ("D", "D"),
    ("A bird in the hand", None),
    ("I do not know.", None),
    ("", None),
    ("Either B or C", None),
    ("E", None),
])
def test_extract_letter(reply, letter):
    assert extract_letter(reply, "ABCD", OPTIONS) == letter


def test_extract_letter_five_options():
    assert extract_letter("The answer is E", "ABCDE") == "E"
    assert extract_letter("E", "ABCD") is None


@pytest.mark.parametrize("text, number", [
    ("$1,234.50", 1234.5),
    ("1234.5", 1234.5),
    ("The answer is 42.", 42.0),
    ("She pays 3 times 4 = 12 dollars. Answer: 12", 12.0),
    ("First 5, then 7, so #### 35", 35.0),
    ("-17", -17.0),
    ("It costs $0.75 each", 0.75),
    ("no numbers here", None),
])
def test_parse_number(text, number):
    assert parse_number(text) == number


def _score(method, reply, ideal, **cfg):
    """The registered scorer `method`, with its own typed options, on one reply."""
    scorer = get_scorer(method)
    options = scorer.options.model_validate({"method": method, **cfg})
    return scorer.run(ScoreInput(Sample("x", "q", ideal), Completion(reply), [], options)).value


def test_match_family():
    assert _score("exact", "  Paris ", "paris") == 1.0
    assert _score("exact", "Paris", "paris", case_sensitive=True) == 0.0
    assert _score("exact", "Paris, France", "Paris") == 0.0
    assert _score("includes", "It is Paris, France", "paris") == 1.0
    assert _score("includes", "London", "Paris") == 0.0
    assert _score("fuzzy", "The Eiffel tower!", "eiffel tower") == 1.0
    assert _score("fuzzy", "tower", "the Eiffel Tower") == 1.0
    assert _score("fuzzy", "Big Ben", "Eiffel Tower") == 0.0
    assert _score("numeric", "so the total is $1,200", "1200") == 1.0
    assert _score("numeric", "so the total is 1201", "1200") == 0.0
    assert _score("includes", "Brasilia", "Brasília|||Brasilia") == 1.0


def test_a_scorer_refuses_another_scorers_options():
    with pytest.raises(ValueError, match="tolerance"):
        get_scorer("exact").options.model_validate({"method": "exact", "tolerance": 0.1})


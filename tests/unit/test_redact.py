"""evalkit.core.redact: key-like strings out of stored text (the sandbox's verdicts, later logs and errors)."""

from __future__ import annotations

import pytest

from evalkit.core.redact import MARK, redact

KEYS = {
    "openai": "sk-" + "aB3" * 16,
    "openai project": "sk-proj-" + "Zx9_-" * 12,
    "openai service account": "sk-svcacct-" + "q1" * 20,
    "anthropic": "sk-ant-api03-" + "Kk7" * 30 + "-AA",
    "google": "AIza" + "Sy" + "X" * 33,
    "groq": "gsk_" + "r5" * 26,
    "hugging face": "hf_" + "T" * 34,
}


@pytest.mark.parametrize("name", list(KEYS))
def test_each_family_is_redacted_wherever_it_stands(name):
    key = KEYS[name]
    for text, expected in ((key, MARK), (f"key={key}&x=1", f"key={MARK}&x=1"), (f"'{key}'", f"'{MARK}'"),
                           (f"export OPENAI_API_KEY={key}\n", f"export OPENAI_API_KEY={MARK}\n"),
                           (f"b'{key}\\x00'", f"b'{MARK}\\x00'")):
        assert redact(text) == expected


def test_bearer_tokens_keep_the_word():
    assert redact("Authorization: Bearer abc.DEF-ghi_jkl~+/=") == f"Authorization: Bearer {MARK}"
    assert redact("authorization: bearer   0123456789") == f"authorization: bearer   {MARK}"
    assert redact("AUTHORIZATION: BEARER 0123456789") == f"AUTHORIZATION: BEARER {MARK}"
    assert redact("Bearer short") == "Bearer short"                       # too short to be a token
    assert redact("forbearer 0123456789abc") == "forbearer 0123456789abc"   # not the word Bearer


def test_ordinary_text_is_left_alone():
    # near misses, built from parts so that no line of this file looks like a key to a scanner
    for text in ("task-" + "abcdefghijklmnopqrstuvwxyz", "disk-" + "0123456789abcdefghij",
                 "ask-" + "me-anything-please-now", "AssertionError: Error (test line 12)", "sk-short",
                 "mhf_" + "abcdefghijklmnopqrstuvwxyz", "AIzaShort", "", "naïve café ☕ sk"):
        assert redact(text) == text


def test_known_strings_exactly_and_longest_first():
    secret = "hunter2-correct-horse"
    assert redact(f"a {secret} b {secret}", [secret]) == f"a {MARK} b {MARK}"
    assert redact("x ab.cd+ef(gh)ij y", ["ab.cd+ef(gh)ij"]) == f"x {MARK} y"      # no regex meaning
    assert redact("prefix-123456789 and prefix-12345678", ["prefix-12345678", "prefix-123456789"]) == f"{MARK} and {MARK}"
    assert redact("tiny abc stays", ["abc", "", "tiny"]) == "tiny abc stays"      # under 8 characters: ignored
    assert redact("ab" * 10, (s for s in ["abababab"])) == f"{MARK}{MARK}abab"      # any iterable

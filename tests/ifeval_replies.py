"""Generated replies for IFEval's tests: built from a data record to sit on each checker's edges.

`reply(record, rng)` mixes fragments that are on or next to what the record's instructions look
for (its keywords one more or one fewer time than asked, exactly the asked number of bullets or
one off, paragraphs split by `***` or blank lines with empty ones inside, the end phrase with
quotes or text after it, JSON in and out of code fences, markdown stars the loose variants
strip, a first or last line that hides a format), with fragments that trip tokenizers
(abbreviations, contractions, curly quotes, other languages).
"""

from __future__ import annotations

import json
import random

LANGUAGE_LINES = {
    "en": "The weather was pleasant, so we walked along the river and talked about our plans for the summer.",
    "fr": "Le temps était agréable, alors nous avons marché le long de la rivière en parlant de nos projets.",
    "de": "Das Wetter war angenehm, also gingen wir am Fluss entlang und sprachen über unsere Pläne.",
    "es": "El tiempo era agradable, así que caminamos junto al río y hablamos de nuestros planes.",
    "hi": "मौसम सुहावना था, इसलिए हम नदी के किनारे टहले और अपनी योजनाओं के बारे में बात की।",
    "ru": "Погода была приятной, поэтому мы гуляли вдоль реки и говорили о наших планах на лето.",
    "ja": "天気が良かったので、私たちは川沿いを散歩しながら夏の計画について話しました。",
    "ar": "كان الطقس لطيفا، لذلك مشينا على طول النهر وتحدثنا عن خططنا للصيف.",
    "fi": "Sää oli miellyttävä, joten kävelimme joen vartta ja puhuimme kesän suunnitelmistamme.",
    "kn": "ಹವಾಮಾನ ಹಿತಕರವಾಗಿತ್ತು, ಆದ್ದರಿಂದ ನಾವು ನದಿಯ ಉದ್ದಕ್ಕೂ ನಡೆದು ನಮ್ಮ ಯೋಜನೆಗಳ ಬಗ್ಗೆ ಮಾತನಾಡಿದೆವು.",
}

TRICKY = [
    "Dr. Smith went home. He was tired.", "It cost $3.50 at the U.S. store... Then we left!",
    "I DON'T KNOW. WE CANNOT GO.", "He said “Stop.” Then silence.", "e.g. this one. And i.e. that one.",
    "Mr. Jones, Jr. arrived at 5 p.m. on Jan. 3. Nobody cared?", "WOW!!! Really?!", "A.B.C. Corp. is big.",
    "Hello, world", "(PARENTHESES) and [brackets] and <angles>", "#hashtag #another", "NASA-LED, FBI/CIA",
    "'quoted' and \"double\"", "", " ", "\t", "***", "**", "*", "******", "- ", "* ", "*x*", "** **", "**bold**",
    "p.s. lower", "P. S. spaced", "P.P.S late", "p. p. s. more", "<<Title>>", "<< >>", "<<>>", "[]", "[a][b]",
    "```json", "```", "{\"a\": 1}", "[1, 2, 3]", "{broken", "My answer is yes.", "my answer is no.",
    "Section 1", "SECTION 2 ", "Section2", "Day 3", "PARAGRAPH 4", "Audience 1", "NaN", "“", "\"",
]


def _repeat(word: str, times: int, rng: random.Random) -> str:
    forms = [word, word.upper(), word.capitalize(), f"{word}s", f"un{word}"]
    return " ".join(rng.choice(forms) for _ in range(times))


def _near(n: int, rng: random.Random) -> int:
    return max(0, n + rng.choice((-1, 0, 0, 1)))


def _fragments(iid: str, kw: dict, prompt: str, rng: random.Random) -> list[str]:
    """Pieces aimed at one instruction's edge: about right, one off, or in a form it rejects."""
    k = iid.split(":")[1]
    if k == "existence":
        return [_repeat(w, rng.randint(0, 2), rng) for w in kw["keywords"]]
    if k == "frequency":
        return [_repeat(kw["keyword"], _near(kw["frequency"], rng), rng)]
    if k == "forbidden_words":
        return [_repeat(rng.choice(kw["forbidden_words"]), rng.randint(0, 1), rng)]
    if k == "letter_frequency":
        return [kw["letter"] * _near(kw["let_frequency"], rng)]
    if k == "response_language":
        return [LANGUAGE_LINES.get(kw["language"], LANGUAGE_LINES["en"]) if rng.random() < .7 else rng.choice(list(LANGUAGE_LINES.values()))]
    if k in ("number_sentences", "number_words"):
        n = _near(kw.get("num_sentences", kw.get("num_words", 1)), rng)
        unit = rng.choice(["Short one.", "Dr. Who came.", "Go", "Yes! No?"]) if k == "number_sentences" else "word"
        return [" ".join([unit] * min(n, 400))]
    if k in ("number_paragraphs", "nth_paragraph_first_word"):
        n = _near(kw["num_paragraphs"], rng)
        first = kw.get("first_word", "text")
        sep = rng.choice(["\n\n", "\n***\n", " *** ", "\n\n\n\n", "***"])
        return [sep.join(rng.choice([f"{first} is here.", f"\"{first}, yes", f"'{first.upper()}.", "Other text.", ""])
                         for _ in range(n))]
    return _markup_fragments(k, kw, prompt, rng)


def _markup_fragments(k: str, kw: dict, prompt: str, rng: random.Random) -> list[str]:
    """Pieces for the instructions about markup, format, start and end, and case words."""
    if k == "number_placeholders":
        return [" ".join(rng.choice(["[name]", "[]", "[a b]", "[x"]) for _ in range(_near(kw["num_placeholders"], rng)))]
    if k == "postscript":
        return [rng.choice([kw["postscript_marker"], "P.S.", "P.P.S", "p. s.", "PS"]) + " see you"]
    if k == "number_bullet_lists":
        return ["\n".join(rng.choice(["* point", "- point", "  * indented", "** not", "*", "-"]) for _ in range(_near(kw["num_bullets"], rng)))]
    if k == "number_highlighted_sections":
        return [" ".join(rng.choice(["*one*", "**two**", "* *", "****", "*a\nb*"]) for _ in range(_near(kw["num_highlights"], rng)))]
    if k == "multiple_sections":
        sp = kw["section_spliter"]
        return ["\n".join(f"{rng.choice([sp, sp.lower(), sp + ' '])} {i}\ncontent" for i in range(1, _near(kw["num_sections"], rng) + 1))]
    if k == "json_format":
        body = json.dumps({"answer": prompt[:40]}) if rng.random() < .7 else "{'single': quotes}"
        return [rng.choice([body, f"```json\n{body}\n```", f"```JSON{body}```", f"Here:\n{body}", f"```\n{body}\n```\nThanks"])]
    if k == "title":
        return [rng.choice(["<<A Title>>", "<< >>", "<<line\nbreak>>", "<<<nested>>>", "<Title>"])]
    if k == "two_responses":
        return [rng.choice(["first\n******\nsecond", "same\n******\nsame", "a******b******c", "******\nx\n******\ny", "a\n******\n\n******\nb"])]
    if k == "repeat_prompt":
        return [rng.choice([kw["prompt_to_repeat"], kw["prompt_to_repeat"].upper(), "Sure! " + kw["prompt_to_repeat"], kw["prompt_to_repeat"][:-5]])]
    if k == "end_checker":
        return [rng.choice([kw["end_phrase"], f"\"{kw['end_phrase']}\"", kw["end_phrase"] + " Bye.", kw["end_phrase"].lower() + "\n"])]
    if k == "capital_word_frequency":
        return [" ".join(rng.choice(["WORD", "DON'T", "CAN'T", "U.S.", "A", "Word", "x-RAY", "OK.", "(YES)", "NO,NO"]) for _ in range(_near(kw["capital_frequency"], rng)))]
    if k == "no_comma":
        return [rng.choice(["no commas here", "one, comma", "a，full-width"])]
    return []     # quotation, constrained_response, english_capital, english_lowercase: shaped below


def _shape(text: str, ids: list[str], rng: random.Random) -> str:
    """Whole-reply forms: case, quotes, a header or footer line the loose variants can drop, stars."""
    if any(i.endswith("english_capital") for i in ids) and rng.random() < .6:
        text = text.upper()
    if any(i.endswith("english_lowercase") for i in ids) and rng.random() < .6:
        text = text.lower()
    if any(i.endswith("constrained_response") for i in ids) and rng.random() < .6:
        text += " " + rng.choice(["My answer is yes.", "My answer is maybe", "My answer is no."])
    if any(i.endswith("quotation") for i in ids) and rng.random() < .6:
        text = rng.choice([f"\"{text}\"", f"\"{text}", f"  \"{text}\"\n", "\""])
    if rng.random() < .3:
        text = rng.choice(["Sure, here it is:\n", "**Answer**\n", "*"]) + text
    if rng.random() < .3:
        text += rng.choice(["\nHope this helps!", "\n*", "\n**End**"])
    return text


def reply(record: dict, rng: random.Random) -> str:
    parts = [f for iid, kw in zip(record["instruction_id_list"], record["kwargs"])
             for f in _fragments(iid, kw, record["prompt"], rng)]
    parts += rng.sample(TRICKY, rng.randint(0, 4))
    rng.shuffle(parts)
    text = "".join(p + rng.choice([" ", "\n", "\n\n", ". ", ""]) for p in parts)
    return _shape(text, record["instruction_id_list"], rng)

"""The docs for two audiences hold together: a short README that names every command and links
every reference page, and links between pages (files and #anchors) that all resolve."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
REFERENCE = ["commands", "providers", "exams", "benchmarks", "ci", "output", "batch", "model-graded", "testing",
             "security", "limitations", "architecture", "writing-evals", "view", "predict", "results"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_slug_follows_githubs_rule():
    assert slug("Checking a new eval end to end: `--answers-from`") == "checking-a-new-eval-end-to-end---answers-from"
    assert slug("On this repository's machines") == "on-this-repositorys-machines"


def test_every_link_and_anchor_between_pages_resolves():
    broken = []
    for page in PAGES:
        for target in links(page):
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such file")
            elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
                broken.append(f"{page.relative_to(ROOT)}: {target}: no such heading")
    assert broken == []


def test_readme_is_short_and_links_every_reference_page():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160
    linked = {Path(t.partition("#")[0]).stem for t in links(ROOT / "README.md") if t.startswith("docs/")}
    assert sorted(set(REFERENCE) - linked) == []
    assert all((ROOT / "docs" / f"{name}.md").is_file() for name in REFERENCE)


def commands(help_text: str) -> list[str]:
    block = help_text.split("Commands:", 1)[1]
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+)\s", block, flags=re.M)]


def test_readme_table_and_commands_page_name_every_command(evalkit):
    names = commands(evalkit("--help").stdout)
    data = commands(evalkit("data", "--help").stdout)
    assert {"run", "view", "predict", "schema", "validate"} <= set(names) and data == ["list", "pull", "verify"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| command | what it does | details |"):]
    table = table[:table.index("\n\n")]
    rows = [re.split(r"(?<!\\)\|", line)[1].strip() for line in table.splitlines()[2:]]
    named = {m.group(1) if (m := re.match(r"`evalkit ([a-z]+)", cell)) else cell for cell in rows}
    assert sorted(set(names) - named) == [] and sorted(named - set(names)) == []
    assert "`evalkit data list\\|pull\\|verify`" in rows
    synopsis = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8").split("```", 2)[1]
    starts = {m.group(1) for m in re.finditer(r"^evalkit ([a-z]+)", synopsis, flags=re.M)}
    assert sorted(set(names) - starts) == []
    assert all(f"evalkit data {sub}" in synopsis for sub in data)

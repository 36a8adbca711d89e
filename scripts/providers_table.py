"""Write the provider table of docs/providers.md from registry/providers.yaml.

    python scripts/providers_table.py           rewrite the table between the page's markers
    python scripts/providers_table.py --check   exit 1 if the page's table is out of date

The registry is the one source of the table, so the page cannot drift from what
`evalkit providers` prints; a test runs `--check`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

START, END = "<!-- providers table: scripts/providers_table.py -->", "<!-- end of providers table -->"


def table() -> str:
    from evalkit.cli.catalog import provider_rows

    def mark(value) -> str:
        return "?" if value is None else ("yes" if value else "no")

    lines = ["| `--model` | key variable | default URL | log-probabilities | seed | system messages | images | prices "
             "| documentation |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in provider_rows():
        if r["kind"] == "plug-in":
            continue
        keys = " or ".join(f"`{k}`" for k in r["key_env"]) or "none"
        if r["key_env"] and not r["key_required"]:
            keys += " (optional)"
        url = "in-process" if r["kind"] == "in-process" else (f"`{r['base_url']}`" if r["base_url"] else "")
        if r["base_url_env"]:
            url += (" or " if url else "") + f"`${r['base_url_env']}`"
        logprobs = f"yes (top {r['max_top_logprobs']})" if r["logprobs"] else "no"
        seed = mark(r["seed"]) + (f" (as `{r['renames']['seed']}`)" if "seed" in r["renames"] else "")
        docs = f"[docs]({r['docs']})" if r["docs"] else ""
        p = r["prices"]
        prices = f"[recorded {p['recorded']}]({p['source']})" if p else r["price_note"]
        lines.append(f"| `{r['name']}/` | {keys} | {url} | {logprobs} | {seed} | {mark(r['system_messages'])} | "
                     f"{mark(r['images'])} | {prices} | {docs} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    page = ROOT / "docs" / "providers.md"
    text = page.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"docs/providers.md has no provider table markers ({START} ... {END})")
        return 1
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    updated = f"{head}{START}\n{table()}\n{END}{tail}"
    if "--check" in argv:
        if updated != text:
            print("docs/providers.md's provider table is out of date: run python scripts/providers_table.py")
            return 1
        return 0
    page.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

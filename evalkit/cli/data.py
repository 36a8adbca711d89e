"""`evalkit data`: the catalogued datasets, fetching them into the cache, and checking what is there.

    evalkit data list              name, size, license, whether it is cached, where it comes from
    evalkit data pull NAME|all     download and verify into $EVALKIT_CACHE_DIR/data (never EVALKIT_DATA_DIR)
    evalkit data verify [--dir D]  re-hash the cache (or an offline mirror) against the catalogue

A NAME is a catalogue entry (`gsm8k`, `mmlu-translated/fr`) or a folder above entries
(`mmlu-translated`: all 14 languages). Exit codes: 0 good, 1 a check failed, 2 a usage or input error.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from evalkit.core.errors import EvalkitError


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"evalkit: error: {message}", err=True)
    sys.exit(code)


def _catalogue():
    from evalkit.datasets import catalogue as sources

    try:
        return sources.catalogue()
    except EvalkitError as exc:
        _fail(exc.message, exc.exit_code)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


@click.group("data")
def data() -> None:
    """Benchmark data: the catalogue, downloads into the cache, verification.

    \b
    evalkit data list               what can be downloaded, and what is cached
    evalkit data pull gsm8k         download and verify one dataset (or `all`)
    evalkit data verify             re-hash the cache against the catalogue
    """


@data.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dataset.")
def list_cmd(as_json: bool) -> None:
    """Each dataset: name, download size, license, cached or not, source."""
    from evalkit.datasets import catalogue as sources

    cat = _catalogue()
    mirror = os.environ.get("EVALKIT_DATA_DIR")
    rows = []
    for name, ds in cat.items():
        state = "cached" if sources.is_installed(ds) else "-"
        if mirror and (Path(mirror) / name).exists():
            state = "mirror"             # what runs will read: EVALKIT_DATA_DIR wins over the cache
        rows.append({"name": name, "size": ds.download_size(), "license": ds.license, "state": state,
                     "source": ds.source(), "title": ds.title})
    if as_json:
        from evalkit.results.outputs import as_json as typed_json

        for r in rows:
            click.echo(typed_json("data-list", r))
        return
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'name':<{width}}  {'size':>9}  {'license':<16} {'cached':<7} source")
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {_size(r['size']):>9}  {r['license'][:16]:<16} {r['state']:<7} {r['source']}")
    where = f"EVALKIT_DATA_DIR={mirror} (offline mirror, read as it is)" if mirror else str(sources.cache_root())
    click.echo(f"data is read from {where}", err=True)


def _select(names: tuple[str, ...], cat: dict) -> list:
    from evalkit.datasets import catalogue as sources

    if not names:
        _fail("name a dataset to pull, or `all` (`evalkit data list` shows them)")
    if "all" in names:
        return list(cat.values())
    chosen = []
    for name in names:
        found = sources.entries_for(name.strip("/"), cat=cat)
        if not found:
            import difflib

            close = difflib.get_close_matches(name, list(cat), n=3)
            _fail(f"unknown dataset {name!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
                  + "; `evalkit data list` shows them")
        chosen += [d for d in found if d not in chosen]
    return chosen


@data.command()
@click.argument("names", nargs=-1)
def pull(names: tuple[str, ...]) -> None:
    """Download and verify NAME ... (or `all`) into the cache; what is verified is not fetched again."""
    from evalkit.datasets import catalogue as sources

    cat = _catalogue()
    for ds in _select(names, cat):
        was = sources.is_installed(ds)
        try:
            path = sources.install(ds)
        except EvalkitError as exc:
            _fail(exc.message, exc.exit_code)
        click.echo(f"{ds.name}: {'already cached' if was else 'downloaded and verified'} at {path}")


@data.command()
@click.argument("names", nargs=-1)
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Check this folder (an offline mirror such as EVALKIT_DATA_DIR) instead of the cache; it is not changed.")
def verify(names: tuple[str, ...], folder: Path | None) -> None:
    """Re-hash cached datasets (or those in --dir) against the catalogue; exit 1 if any file is bad.

    A bad dataset is removed from the cache (the next use or `evalkit data pull` fetches it again);
    a --dir folder is only reported on.
    """
    from evalkit.datasets import catalogue as sources

    cat = _catalogue()
    chosen = _select(names, cat) if names else list(cat.values())
    root = folder or sources.cache_root()
    checked, bad = 0, 0
    for ds in chosen:
        if not (root / ds.name).exists():
            continue
        checked += 1
        problems = sources.verify(ds, root)
        if not problems:
            click.echo(f"ok   {ds.name}")
            continue
        bad += 1
        for p in problems:
            click.echo(f"bad  {ds.name}: {p}")
        if folder is None:
            shutil.rmtree(root / ds.name, ignore_errors=True)
            click.echo(f"     {ds.name}: removed from the cache; `evalkit data pull {ds.name}` fetches it again")
    click.echo(f"{checked} dataset(s) checked in {root}, {bad} bad", err=True)
    if bad:
        sys.exit(1)

"""The viewer's page: served with its static files, or as one self-contained HTML file (`--out`).

The HTML, script and style ship in `evalkit/analysis/view/static/` (package data); nothing is fetched from the
network. The self-contained file inlines them under a Content-Security-Policy that allows exactly
those inline blocks (by their sha256) and nothing else, and embeds the logs' samples as a JSON data
block the script reads with JSON.parse — log text is never markup there either. It embeds at most
`MAX_EMBED_SAMPLES` samples and `MAX_EMBED_BYTES` of sample lines; past that `evalkit view` (served,
paging from the log on demand) is the way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from importlib import resources

from evalkit.core.errors import EvalkitError
from evalkit.analysis.view.query import row_json, select_pairs
from evalkit.analysis.view.session import Viewer

SCRIPTS = ("util.js", "api.js", "list.js", "detail.js", "pairs.js", "exam.js", "main.js")
STATIC = {name: resources.files("evalkit.analysis.view").joinpath("static", name).read_bytes() for name in (*SCRIPTS, "app.css")}
MAX_EMBED_SAMPLES = 10_000
MAX_EMBED_BYTES = 64 * 1024 * 1024


def clean(value):
    """JSON the browser can parse: NaN and infinities (which a hostile log may hold) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def to_json(value) -> str:
    return json.dumps(clean(value), ensure_ascii=True, default=str)


def _template() -> str:
    return resources.files("evalkit.analysis.view").joinpath("static", "index.html").read_text(encoding="utf-8")


def page_html(served: bool, data: str | None = None) -> str:
    """The page: with <script src> and <link> to the server's files, or everything inline."""
    if served:
        head = "<link rel='stylesheet' href='/static/app.css'>"
        tail = "".join(f"<script src='/static/{name}'></script>" for name in SCRIPTS)
        return _template().replace("<!--HEAD-->", head).replace("<!--TAIL-->", tail)
    assert data is not None                      # a self-contained page carries its data
    script = "\n".join(STATIC[name].decode() for name in SCRIPTS)
    style = STATIC["app.css"].decode()
    sha = {k: base64.b64encode(hashlib.sha256(v.encode()).digest()).decode() for k, v in (("s", script), ("c", style))}
    csp = (f"default-src 'none'; script-src 'sha256-{sha['s']}'; style-src 'sha256-{sha['c']}'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    head = f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\"><style>{style}</style>"
    # the data block is JSON with every '<' escaped, so no log text can close the element
    tail = (f"<script type='application/json' id='evalkit-data'>{data.replace('<', chr(92) + 'u003c')}</script>"
            f"<script>{script}</script>")
    return _template().replace("<!--HEAD-->", head).replace("<!--TAIL-->", tail)


def check_embeddable(viewer: Viewer) -> None:
    samples = sum(len(r.rows) for r in viewer.runs)
    size = sum(row.length for r in viewer.runs for row in r.rows)
    biggest = max(viewer.runs, key=lambda r: len(r.rows)).path if viewer.runs else None
    if samples > MAX_EMBED_SAMPLES or size > MAX_EMBED_BYTES:
        raise EvalkitError(f"--out embeds at most {MAX_EMBED_SAMPLES:,} samples and {MAX_EMBED_BYTES >> 20} MiB of "
                           f"sample lines; these logs have {samples:,} samples ({size / 2**20:.1f} MiB, the largest "
                           f"{biggest}): browse them with `evalkit view LOG ...` (served, paged from the log)")


def embedded_data(viewer: Viewer) -> str:
    """Every answer the page could ask the server for, in one JSON text (see static/api.js)."""
    check_embeddable(viewer)
    runs = [{"rows": [row_json(p, row) for p, row in enumerate(r.rows)],
             "records": [r.record(p) for p in range(len(r.rows))]} for r in viewer.runs]
    pairs = []
    for k in range(len(viewer.pair_plan)):
        p = viewer.pairing(k)
        base, new = viewer.runs[p.base_run], viewer.runs[p.new_run]
        page = select_pairs(p, base, new, "all", "", 0, max(1, len(p.pairs)))
        pairs.append({"comparison": p.comparison, "error": p.error, "rows": page["rows"]})
    return to_json({"meta": viewer.meta(), "runs": runs, "pairs": pairs})


def write_page(viewer: Viewer, out) -> int:
    text = page_html(served=False, data=embedded_data(viewer))
    try:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise EvalkitError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    return len(text)


def write_beside(paths: list[str], out, name: str) -> str | None:
    """The viewer page of these logs beside a report written to `out` (in its `<stem>_files/`): its
    path relative to the report, or None when the logs are past the file's limit (the report then
    names the `evalkit view` command only)."""
    import re
    from pathlib import Path

    folder = Path(out).with_name(Path(out).stem + "_files")
    target = folder / f"view-{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.html"
    viewer = Viewer(paths)
    try:
        try:
            check_embeddable(viewer)
        except EvalkitError:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        write_page(viewer, target)
    finally:
        viewer.close()
    return f"{folder.name}/{target.name}"

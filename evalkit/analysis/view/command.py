"""`evalkit view LOG [LOG ...]`: browse a run's samples in the browser (see docs/view.md).

    evalkit view LOG [LOG ...] [--port N] [--no-browser]    serve the page on 127.0.0.1 and print its URL
    evalkit view LOG [LOG ...] --out FILE.html               write the page as one self-contained file

LOG is a run log (JSONL) or an exam result (`<log dir>/exams/<exam>/<model>.json`, which brings
its sections' logs along). Two logs of the same eval are shown side by side as well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("view")
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the page as one self-contained HTML file (a CI artifact) instead of serving it.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The port on 127.0.0.1 to serve on; 0 picks a free one.")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser (headless use).")
def view(logs: tuple[str, ...], out: Path | None, port: int, no_browser: bool) -> None:
    """Browse the samples of run logs: filters, search, one sample's prompt and reply, two runs
    side by side, an exam's chain down to its items."""
    from evalkit.analysis.view.session import Viewer

    viewer = Viewer(list(logs))
    try:
        _say_bad_lines(viewer)
        if out is None:
            return _serve(viewer, port, no_browser)
        from evalkit.analysis.view.page import write_page

        size = write_page(viewer, out)
        click.echo(f"evalkit view: wrote {out} ({size / 2**20:.1f} MiB, "
                   f"{sum(len(r.rows) for r in viewer.runs):,} samples)", err=True)
    finally:
        viewer.close()


def _say_bad_lines(viewer) -> None:
    for run in viewer.runs:
        for bad in run.bad_lines[:5]:
            click.echo(f"evalkit: warning: {run.path}:{bad['line']}: {bad['reason']} (the page lists such lines)",
                       err=True)
        if run.bad_count > 5:
            click.echo(f"evalkit: warning: {run.path}: {run.bad_count - 5} more line(s) not read", err=True)


def _serve(viewer, port: int, no_browser: bool) -> None:
    from evalkit.analysis.view.server import serve

    try:
        server = serve(viewer, port)
    except OSError as exc:
        from evalkit.core.errors import EvalkitError

        raise EvalkitError(f"--port {port}: cannot listen on 127.0.0.1 ({exc.strerror or exc})") from None
    viewer.compare_ahead()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    click.echo(f"evalkit view: serving {len(viewer.runs)} log(s) at {url} (Ctrl-C to stop)")
    sys.stdout.flush()
    if not no_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()

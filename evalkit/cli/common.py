"""What every command shares: exit codes, the one-line error, and the number types of flags."""

from __future__ import annotations

import math
import os
import sys
import click

EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def fail(message: str, code: int = EXIT_INPUT) -> None:
    from evalkit.core.redact import env_secrets, redact

    click.echo(f"evalkit: error: {redact(message, env_secrets())}", err=True)
    sys.exit(code)


class Finite(click.FloatRange):
    """A float in a range that is a real number (nan and inf are refused)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def is_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or os.sep in name

"""The one exception type a user ever sees.

Any problem the user can act on (bad YAML, missing data, an unreachable server) is raised as
`EvalkitError` with a single-line message that names the file, line or sample involved. The CLI
prints it as `evalkit: error: <message>` and exits with `exit_code`, never with a traceback.
"""


class EvalkitError(Exception):
    """A user-facing error: one line, actionable, with its exit code (2: usage or input)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class SpecError(EvalkitError):
    """One or more problems in YAML specs; `problems` holds one `file:line: field: message` each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        head = problems[0] if problems else "invalid spec"
        more = f" (and {len(problems) - 1} more problem(s); run `evalkit validate`)" if len(problems) > 1 else ""
        super().__init__(head + more, exit_code=2)


_warned: set[str] = set()


def warn(message: str) -> None:
    """One line on stderr, once per message: for data kept as published but worth knowing about."""
    if message not in _warned:
        _warned.add(message)
        import sys

        sys.stderr.write(f"evalkit: warning: {message}\n")


def reset_warnings() -> None:
    _warned.clear()


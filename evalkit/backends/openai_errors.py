"""What an OpenAI-compatible server's HTTP error means, and how long it asked to wait.

`_classify_status` turns an HTTP error into the failure kind the runner acts on (`FatalError` for
401/403/404, `TransientError` with the server's requested wait for 408/429/5xx, `RefusedError` for
the rest), quoting the server's own words: `server_words` reads them from whatever shape of error
body it sent (OpenAI, llama.cpp, Ollama, vLLM, FastAPI, plain text, an HTML page), on one redacted
line. `retry_after_seconds` reads Retry-After (seconds or an HTTP date) or OpenAI's reset headers.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time

from evalkit.backends.base import FatalError, RefusedError, TransientError
from evalkit.backends.openai_wire import short_error


def retry_after_seconds(headers) -> float | None:
    """The wait a server asked for: Retry-After (seconds or HTTP date) or x-ratelimit-reset-*.
    A value that is not a number of seconds ("nan") is no request at all; an infinite one stays
    infinite, so the runner ends the sample as asking more than --max-retry-after."""
    value = headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
            return None if math.isnan(seconds) else max(0.0, seconds)
        except ValueError:
            pass
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (ValueError, TypeError, IndexError, OverflowError):
            pass                   # neither seconds nor a date: the reset headers may still say
    waits = [_duration(headers.get(h)) for h in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")]
    known = [max(0.0, w) for w in waits if w is not None and not math.isnan(w)]
    return max(known) if known else None


def _duration(value: str | None) -> float | None:
    """OpenAI's reset headers look like '1s', '6m0s', '250ms'."""
    if not value:
        return None
    import re

    total, matched = 0.0, False
    for num, unit in re.findall(r"([\d.]+)(ms|s|m|h)", value):
        matched = True
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if matched:
        return total
    try:
        return float(value)
    except ValueError:
        return None


def _classify_status(exc, endpoint: str, model: str, key_hint: str = "OPENAI_API_KEY") -> Exception:
    """An HTTP error as the failure kind it is, with the server's own words (`server_words`)."""
    status = exc.status_code
    detail = server_words(_body_text(exc)) or short_error(exc.message if hasattr(exc, "message") else exc)
    if status in (401, 403):
        return FatalError(f"HTTP {status} from {endpoint}: not authorised ({detail}); check {key_hint}")
    if status == 404:
        return FatalError(f"HTTP 404 from {endpoint}: model {model!r} or endpoint not found ({detail})")
    if status == 429 or status == 408 or status >= 500:
        return TransientError(f"HTTP {status}: {detail}", retry_after_seconds(exc.response.headers), rate_limited=status == 429)
    return RefusedError(f"HTTP {status}: {detail}")


ERROR_BODY_READ, ERROR_WORDS = 65536, 300     # what of an error body is read, and shown


def _body_text(exc) -> str:
    """The start of an error reply's body as text ('' when there is none); the client read it."""
    try:
        return exc.response.content[:ERROR_BODY_READ].decode("utf-8", "replace")
    except Exception:  # a body the client could not read: the status alone says it
        return ""


def server_words(text: str) -> str:
    """What an error body says, on one line of at most ERROR_WORDS characters, whatever its shape:
    OpenAI's and llama.cpp's `{"error": {"message": ...}}`, Ollama's `{"error": "..."}`, vLLM's
    `{"object": "error", "message": ...}`, FastAPI's `{"detail": "..."}` or its list of pydantic
    errors, plain text, an HTML page (its text). Redacted (a proxy may echo the key); '' for an
    empty body."""
    try:
        said = _said(json.loads(text))
    except (ValueError, RecursionError):
        said = text
    if said is text and text.lstrip().startswith("<"):          # a web page: its text
        said = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>|<[^>]*>", " ", said)
    from evalkit.core.redact import env_secrets, redact

    line = " ".join("".join(c if c.isprintable() else " " for c in said).split())
    line = redact(line, env_secrets())            # before it is cut: a cut key would no longer look like one
    return line if len(line) <= ERROR_WORDS else line[:ERROR_WORDS - 3] + "..."


def _said(body) -> str:
    """The message in a parsed JSON error body (see `server_words`)."""
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "msg"):
            if body.get(key) not in (None, "", [], {}):
                return _said(body[key])
    if isinstance(body, list):
        return "; ".join(_pydantic(e) if isinstance(e, dict) and "msg" in e else _said(e) for e in body[:5])
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)[:ERROR_BODY_READ]


def _pydantic(error: dict) -> str:
    """One of FastAPI's validation errors: `body.model: Field required`."""
    loc = error.get("loc")
    where = ".".join(str(x) for x in loc) if isinstance(loc, list) else ""
    return f"{where}: {_said(error['msg'])}" if where else _said(error["msg"])

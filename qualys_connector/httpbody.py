"""An HTTP answer read into memory only up to a limit.

Answers that are data (a report, a detection page) are streamed to disk; every other answer is
read into memory to be parsed. A server that sends without end (hostile, or broken) must not
exhaust the memory of a cron run: reading stops at ``MAX_BODY``, and the caller turns that into
its own one-line error. No real answer of the calls read this way comes near the limit (a Qualys
IP list of a million single addresses is about 20 MB; a Censys logbook page a few hundred kB).
"""
from __future__ import annotations

MAX_BODY = 64 * 2**20


def read_capped(response, limit: int | None = None) -> bytes | None:
    """The body of an httpx response opened with ``stream``; None when it is longer than ``limit``
    bytes (MAX_BODY unless given; a Content-Length saying so is believed, else reading stops past it)."""
    limit = MAX_BODY if limit is None else limit
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    parts, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def too_large() -> str:
    """How the callers' error messages name the limit."""
    return f"more than {MAX_BODY / 2**20:g} MB"

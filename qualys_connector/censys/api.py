"""Censys ASM logbook API client (httpx): a cursor, then pages of typed events.

Errors are translated into ``CensysError`` / ``CensysAuthError`` here and only here. Retries
follow ``RETRY`` (one ``retry.Retry`` value): 429 and errorCode 10039 wait what Retry-After
asks (10 s when it says nothing, never less than 1 s, never more than an hour); 5xx and
connection errors back off a few times; a failed cursor call is an error, never a silent
restart "from inception" (the original tool's bug). Events are parsed once, here
(``events.LogbookEvent``), so the rest of the sync never looks at raw JSON.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from .. import __version__
from ..errors import CensysAuthError, CensysError
from ..httpbody import read_capped, too_large
from ..logsetup import add_secret, get_logger, mask_url
from ..retry import Retry, RetryExhausted, Rule
from .events import LogbookEvent, problem

log = get_logger()

DEFAULT_URL = "https://app.censys.io/api"
AUTH_CODES = {10000, 10001, 10002, 10006}
RETRY_BACKOFF = (2, 5, 15)
MAX_RATE_WAITS = 6
INVALID_CURSOR = 10040
RATE = "rate limit"
MAX_CURSOR = 8192          # a real cursor is base64 of a small JSON object; it goes into every page URL
MALFORMED_HINT = ("run again later (the position is kept); if Censys keeps sending it, report it to Censys "
                  "support")
RULES = (
    Rule(RATE, statuses=frozenset({429}), asked=True, attempts=MAX_RATE_WAITS, default_wait=10.0),
    Rule(RATE, codes=frozenset({10039}), asked=True, attempts=MAX_RATE_WAITS, default_wait=10.0),
    Rule("unavailable", statuses=frozenset(range(500, 600)), backoff=RETRY_BACKOFF),
    Rule("unavailable", exceptions=(httpx.HTTPError,), backoff=RETRY_BACKOFF),
)


@dataclass(frozen=True)
class Page:
    events: list[LogbookEvent]
    next_cursor: str | None
    end_of_events: bool


class CensysClient:
    def __init__(self, api_key: str, url: str = DEFAULT_URL, *, timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None):
        add_secret(api_key)
        self.url = url.rstrip("/")
        self.retry = Retry(RULES, sleeper=sleep)
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout, connect=15.0),
                                  headers={"Censys-Api-Key": api_key, "Content-Type": "application/json",
                                           "Accept": "application/json",
                                           "User-Agent": f"censys-qualys (qualys-connector {__version__})"},
                                  transport=transport, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "CensysClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def cursor(self, id_from: int, types: list[str] | None = None) -> str:
        body: dict = {"idFrom": int(id_from)}
        if types:
            body["filter"] = {"type": list(types)}
        data = self._call("POST", "/v1/logbook-cursor", "getting a logbook cursor", json=body)
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if not cursor:
            raise CensysError("Censys answered the cursor request without a cursor", "run again later")
        if not _cursor_ok(cursor):
            raise CensysError("Censys answered the cursor request with a malformed cursor (not a string of "
                              "printable ASCII, or longer than 8192 characters)", MALFORMED_HINT)
        return cursor

    def page(self, cursor: str) -> Page:
        """One logbook page; a malformed page or event is a ``CensysError``, never skipped silently."""
        data = self._call("GET", "/v1/logbook", "reading the logbook", params={"cursor": cursor})
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise CensysError("Censys sent a logbook page without an events list", "run again later")
        next_cursor, end = data.get("nextCursor"), data.get("endOfEvents")
        if next_cursor not in (None, "") and not _cursor_ok(next_cursor):
            raise CensysError("Censys sent a logbook page with a malformed nextCursor (not a string of printable "
                              "ASCII, or longer than 8192 characters)", MALFORMED_HINT)
        if end is not None and not isinstance(end, bool):
            raise CensysError("Censys sent a logbook page whose endOfEvents is not true or false", MALFORMED_HINT)
        events = []
        for number, raw in enumerate(data["events"], 1):
            why = problem(raw)
            if why:
                raise CensysError(f"Censys sent a malformed logbook event (event {number} of "
                                  f"{len(data['events'])} on the page: {why})", MALFORMED_HINT)
            events.append(LogbookEvent.parse(raw))
        return Page(events, next_cursor or None, bool(end))

    def _call(self, method: str, path: str, what: str, **kw):
        retry = self.retry
        while True:
            try:
                with self._http.stream(method, path, **kw) as response:
                    raw = read_capped(response)
            except httpx.TimeoutException as exc:
                failure: Exception = exc
                error = CensysError(f"Censys at {mask_url(self.url)} did not answer {what} in time", "run again later")
                rule = retry.match(exc=exc)
            except httpx.HTTPError as exc:
                failure = exc
                error = CensysError(f"cannot reach Censys at {mask_url(self.url)} for {what}: {str(exc).splitlines()[0][:160]}",
                                    "check asm_api_url and the network")
                rule = retry.match(exc=exc)
            else:
                if raw is None:
                    raise CensysError(f"Censys sent {too_large()} for {what}, which no logbook answer needs; "
                                      "nothing of it was used", MALFORMED_HINT, status=response.status_code)
                body = _json(raw)
                status = response.status_code
                code = _code(body.get("errorCode")) if isinstance(body, dict) else None
                message = _message(body.get("error") or body.get("message")) if isinstance(body, dict) else ""
                if status in (401, 403) or code in AUTH_CODES:
                    raise CensysAuthError(f"Censys refused the API key ({status}"
                                          f"{f', errorCode {code}' if code else ''}: {message or 'unauthorized'})",
                                          "check asm_api_key (or CENSYS_ASM_API_KEY): the key is on the ASM "
                                          "integrations page", error_code=code, status=status)
                rule = retry.match(status=status, code=code)
                if code == INVALID_CURSOR and (rule is None or rule.name != RATE):
                    raise CensysError(f"Censys says the logbook cursor is invalid (errorCode {code}: {message})",
                                      "run with --reset to start again from idFrom", error_code=code, status=status)
                if rule is None:
                    if status >= 400:
                        raise CensysError(f"Censys refused {what}: HTTP {status}"
                                          f"{f', errorCode {code}' if code else ''}: {message}",
                                          error_code=code, status=status)
                    if not isinstance(body, dict):
                        raise CensysError(f"Censys sent something that is not a JSON object (or JSON nested too "
                                          f"deeply) for {what}", "run again later")
                    return body
                if rule.name == RATE:
                    error = CensysError(f"Censys kept rate-limiting {what}", "run again later",
                                        error_code=code, status=429)
                else:
                    error = CensysError(f"Censys answered HTTP {status} to {what}"
                                        f"{f' (errorCode {code}: {message})' if code else ''}", "run again later",
                                        error_code=code, status=status)
                failure = None
            if rule is None:            # an httpx error no rule retries (none today): final
                raise error from None
            try:
                retry = retry.increment(rule, _retry_after(response.headers.get("Retry-After"))
                                        if failure is None and rule.asked else None)
            except RetryExhausted:
                raise error from None
            if rule.name == RATE:
                log.warning("Censys rate limit (429); waiting %s s as Retry-After asks", retry.wait)
            else:
                log.warning("%s; retrying in %d s", error.message, retry.wait)
            retry.sleep()


def _json(raw: bytes):
    """The body as JSON; None when it is not JSON or nested too deeply for the parser (hostile)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _cursor_ok(cursor) -> bool:
    return isinstance(cursor, str) and len(cursor) <= MAX_CURSOR and cursor.isascii() and cursor.isprintable()


def _code(value) -> int | None:
    """errorCode as an int; anything else (a list, a string, true) is no code at all."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _message(value) -> str:
    """Censys's error text made one short line: it ends up in our one error line."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= 200 else text[:197] + "..."


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds; None (the rule's default wait) when absent or not a number.

    The HTTP-date form is not used by Censys. Capping and the 1 s floor are ``Retry``'s job.
    """
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None

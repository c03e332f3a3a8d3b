"""Censys ASM logbook API client (httpx): a cursor, then pages of events.

Errors are translated into ``CensysError`` / ``CensysAuthError`` here and only here. 429
honours ``Retry-After``; 5xx and connection errors back off a few times; a failed cursor
call is an error, never a silent restart "from inception" (the original tool's bug).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import httpx

from .. import __version__
from ..errors import CensysAuthError, CensysError
from ..logsetup import add_secret, get_logger, mask_url

log = get_logger()

DEFAULT_URL = "https://app.censys.io/api"
AUTH_CODES = {10000, 10001, 10002, 10006}
RETRY_BACKOFF = (2, 5, 15)
MAX_RATE_WAITS = 6


@dataclass(frozen=True)
class Page:
    events: list[dict]
    next_cursor: str | None
    end_of_events: bool


class CensysClient:
    def __init__(self, api_key: str, url: str = DEFAULT_URL, *, timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, transport: httpx.BaseTransport | None = None):
        add_secret(api_key)
        self.url = url.rstrip("/")
        self.sleep = sleep
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
        return cursor

    def page(self, cursor: str) -> Page:
        data = self._call("GET", "/v1/logbook", "reading the logbook", params={"cursor": cursor})
        if not isinstance(data, dict) or not isinstance(data.get("events"), list):
            raise CensysError("Censys sent a logbook page without an events list", "run again later")
        return Page(data["events"], data.get("nextCursor"), bool(data.get("endOfEvents")))

    def _call(self, method: str, path: str, what: str, **kw):
        rate_waits = failures = 0
        while True:
            try:
                response = self._http.request(method, path, **kw)
            except httpx.TimeoutException:
                error = CensysError(f"Censys at {mask_url(self.url)} did not answer {what} in time", "run again later")
            except httpx.HTTPError as exc:
                error = CensysError(f"cannot reach Censys at {mask_url(self.url)} for {what}: {str(exc).splitlines()[0][:160]}",
                                    "check asm_api_url and the network")
            else:
                error = None
                body = _json(response)
                code = body.get("errorCode") if isinstance(body, dict) else None
                message = (body.get("error") or body.get("message") or "") if isinstance(body, dict) else ""
                if response.status_code in (401, 403) or code in AUTH_CODES:
                    raise CensysAuthError(f"Censys refused the API key ({response.status_code}"
                                          f"{f', errorCode {code}' if code else ''}: {message or 'unauthorized'})",
                                          "check asm_api_key (or CENSYS_ASM_API_KEY): the key is on the ASM "
                                          "integrations page", error_code=code, status=response.status_code)
                if response.status_code == 429 or code == 10039:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    rate_waits += 1
                    if rate_waits > MAX_RATE_WAITS:
                        raise CensysError(f"Censys kept rate-limiting {what}", "run again later",
                                          error_code=code, status=429)
                    log.warning("Censys rate limit (429); waiting %s s as Retry-After asks", wait)
                    self.sleep(wait)
                    continue
                if code == 10040:
                    raise CensysError(f"Censys says the logbook cursor is invalid (errorCode 10040: {message})",
                                      "run with --reset to start again from idFrom", error_code=code,
                                      status=response.status_code)
                if response.status_code >= 500:
                    error = CensysError(f"Censys answered HTTP {response.status_code} to {what}"
                                        f"{f' (errorCode {code}: {message})' if code else ''}", "run again later",
                                        error_code=code, status=response.status_code)
                elif response.status_code >= 400:
                    raise CensysError(f"Censys refused {what}: HTTP {response.status_code}"
                                      f"{f', errorCode {code}' if code else ''}: {message}",
                                      error_code=code, status=response.status_code)
                elif not isinstance(body, dict):
                    raise CensysError(f"Censys sent something that is not JSON for {what}")
                else:
                    return body
            if failures >= len(RETRY_BACKOFF):
                raise error
            log.warning("%s; retrying in %d s", error.message, RETRY_BACKOFF[failures])
            self.sleep(RETRY_BACKOFF[failures])
            failures += 1


def _json(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, min(float(value), 3600.0))
    except (TypeError, ValueError):
        return 10.0

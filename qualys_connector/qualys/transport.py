"""How we talk to the Qualys API v2, apart from what we ask it (``api.py``).

Every call is a POST with a form body (IP lists never go into a URL), basic auth, the
mandatory ``X-Requested-With`` header and explicit timeouts. httpx errors and Qualys error
documents become the ``errors.py`` tree here, in ``QualysTransport.call``, and nowhere else.

Retries (``RETRY``, one ``retry.Retry`` value): CODE 1965 (rate limit) and HTTP 429 wait what
Qualys asks (X-RateLimit-ToWait-Sec, Retry-After or SECONDS_TO_WAIT, plus a little jitter so
parallel runs do not come back in step) unless that ends after ``max_wait``; CODE 1960 and a
409 without CODE (concurrency) and CODE 2014 (too many concurrent logins; unverified, spec
§4.2 says "maybe" retry) back off a bounded number of times; 502/503/504 are retried; every
other error is final and carries Qualys's CODE and TEXT. Limits are kept per endpoint (as
Qualys counts them): when an endpoint's last answer said none are left and how long to wait,
the next call of that endpoint waits first instead of earning a 409.
"""
from __future__ import annotations

import random
import time
from typing import Callable

import httpx

from .. import __version__
from ..diskfull import writing
from ..errors import Interrupted, QualysAuthError, QualysError
from ..httpbody import read_capped, too_large
from ..logsetup import add_secret, get_logger, mask_url
from ..progress import NO_PROGRESS, Progress
from ..retry import Retry, RetryExhausted, Rule
from ..statedir import create_private
from .responses import Limits, ResponseFormatError, SimpleReturn, as_int, parse_limits, parse_simple_return

log = get_logger()

# 2000 (bad login) and 2010 are unverified in public sources (docs/qualys-api.md §4.2; 2010 only in the seed);
# we treat them, like the documented 2001/2003/2007/2011, as "a person must act".
AUTH_CODES = {"2000", "2010", "2001", "2003", "2007", "2011"}
LOGIN_BUSY_CODE = "2014"       # too many concurrent logins [unverified]: retried like 1960
# The report-slot limit is known only by its TEXT; no CODE for it is public (docs/qualys-api.md §2.1). Matched on
# the text whether or not a CODE comes with it, so a CODE added by Qualys does not make it fatal.
BUSY_TEXT = "max number of allowed reports already running"
CONCURRENCY_BACKOFF = (15, 30, 60, 60, 60)
UNAVAILABLE_BACKOFF = (10, 30, 60)

# 429 belongs to Qualys's gateway APIs, not /api/2.0/fo/ (docs/qualys-api.md §4.3); handled alike anyway.
RATE = "rate limit"
RULES = (
    Rule(RATE, statuses=frozenset({409}), codes=frozenset({"1965"}), asked=True, attempts=10, jitter=True),
    Rule(RATE, statuses=frozenset({429}), asked=True, attempts=10, jitter=True),
    Rule("concurrency", statuses=frozenset({409}), codes=frozenset({None, "1960"}), backoff=CONCURRENCY_BACKOFF),
    Rule("concurrency", codes=frozenset({LOGIN_BUSY_CODE}), backoff=CONCURRENCY_BACKOFF),
    Rule("unavailable", statuses=frozenset({502, 503, 504}), backoff=UNAVAILABLE_BACKOFF),
)
# Not an HTTP failure: launch answered "max number of allowed reports already running".
REPORT_SLOT = Rule("report slot", backoff=(30, 60, 90, 120, 150))

_AUTH_HINT = ("check user_id and password (or QC_QUALYS_PASSWORD), and that url is your platform's API "
              "server (qualysapi.*, see the README)")


class QualysTransport:
    """httpx set-up, auth, limits per endpoint, retries and error translation for the Qualys API."""

    def __init__(self, url: str, user: str, password: str, *, proxy: str | None = None,
                 proxy_username: str | None = None, proxy_password: str | None = None,
                 verify: bool | str = True, timeout: float = 60.0, max_wait: float = 3600.0,
                 user_agent: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = lambda: random.uniform(1.0, 3.0),
                 transport: httpx.BaseTransport | None = None, auth_hint: str | None = None,
                 stop: Callable[[], bool] | None = None, live: Progress = NO_PROGRESS):
        self.live = live                               # the download's bytes, for a person at a terminal
        add_secret(password)
        add_secret(proxy_password)
        self.url, self.user, self.timeout, self.max_wait = url.rstrip("/"), user, timeout, max_wait
        self.stop = stop or (lambda: False)            # checked between chunks of a download
        self.auth_hint = auth_hint or _AUTH_HINT      # names the keys of the caller's config file
        self.limits = Limits()
        self._limits_by_path: dict[str, Limits] = {}   # Qualys counts limits per API endpoint
        self.clock = clock
        # max_wait counts from the client's creation: no wait Qualys asks for may end after it.
        self.retry = Retry(RULES, deadline=clock() + max_wait, sleeper=sleep, clock=clock, jitter=jitter)
        proxy_obj = None
        if proxy:
            proxy_obj = httpx.Proxy(proxy, auth=(proxy_username, proxy_password or "") if proxy_username else None)
        self._http = httpx.Client(
            base_url=self.url, auth=(user, password),
            headers={"X-Requested-With": "qualys-connector", "User-Agent": user_agent or f"qualys-connector/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=15.0), verify=verify, proxy=proxy_obj,
            transport=transport, follow_redirects=False, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def sleep(self, seconds: float) -> None:
        """The injected (interruptible) sleep, for the API's own waits (polling a report)."""
        self.retry.sleep(seconds)

    # ------------------------------------------------------------------ the one boundary
    def call(self, path: str, data: dict, what: str, *, stream_to: str | None = None) -> bytes:
        """POST and return the body (or stream a 200 answer into ``stream_to`` and return b"")."""
        retry = self.retry
        self._throttle(path, what)
        while True:
            try:
                if stream_to is None:
                    with self._http.stream("POST", path, data=data) as response:
                        body = read_capped(response)
                else:
                    body, response = self._stream(path, data, stream_to, what)
            except httpx.HTTPError as exc:
                raise self._translate(exc, what) from None
            if body is None:
                raise QualysError(f"Qualys sent {too_large()} for {what}, which no such answer needs; nothing of "
                                  "it was used", "check url (it must be the Qualys API server itself) and any proxy; "
                                  "run again later", status=response.status_code)
            self.limits = self._limits_by_path[path] = parse_limits(response.headers)
            if self.limits.remaining is not None and self.limits.remaining <= 10:
                log.warning("only %d Qualys API calls left in this window", self.limits.remaining)
            status = response.status_code
            simple = maybe_simple(body)
            code = simple.code if simple else None
            # For the retry rules None means "no SIMPLE_RETURN at all"; one without CODE is "".
            match_code = "" if simple is not None and code is None else code
            if status == 407:
                raise QualysAuthError("the proxy asks for credentials (HTTP 407)",
                                      "set proxy_username and proxy_password (or QC_PROXY_PASSWORD)")
            if status == 401 or code in AUTH_CODES:
                text = simple.text if simple else "Unauthorized"
                raise QualysAuthError(f"Qualys refused {what} for user {self.user}: "
                                      f"{'CODE ' + code + ': ' if code else ''}{text} (HTTP {status})",
                                      self.auth_hint, code=code, text=text, status=status)
            if 300 <= status < 400:
                raise redirect_error(response, what)
            rule = retry.match(status=status, code=match_code)
            if rule is not None:
                asked = None
                if rule.asked:
                    asked = (self.limits.to_wait_sec or as_int(response.headers.get("Retry-After"))
                             or (as_int(simple.item("SECONDS_TO_WAIT")) if simple else None) or None)
                try:
                    retry = retry.increment(rule, asked)
                except RetryExhausted as exc:
                    if rule.name == RATE:
                        text = simple.text if simple else "Too Many Requests"
                        raise QualysError(f"Qualys's API rate limit is used up: "
                                          f"{'CODE ' + code if code else f'HTTP {status}'}: {text}",
                                          f"Qualys asks to wait {exc.wait:.0f} s, longer than max_wait allows; "
                                          "run later", code=code, text=text, status=status) from None
                else:       # an exhausted back-off falls through to the error below
                    self._log_retry(rule, retry, status, simple, what)
                    retry.sleep()
                    continue
            if simple is not None and BUSY_TEXT in simple.text.lower():
                return body                      # launch_report waits for a free report slot
            if simple is not None and simple.failed:
                raise code_error(simple, what, status)
            if status >= 400:
                raise QualysError(f"Qualys answered HTTP {status} to {what}",
                                  "run again later; if it persists, check url", status=status)
            return body

    def fetch(self, path: str, data: dict, dest: str, what: str) -> None:
        """``call`` with the answer streamed into ``dest``, for the list calls whose answer is a
        document (host detections, KnowledgeBase): a SIMPLE_RETURN with an error CODE sent with
        HTTP 200 is that call's error here, not a parse error later."""
        self.call(path, data, what, stream_to=dest)
        with open(dest, "rb") as fh:
            head = fh.read(2048)
            if b"SIMPLE_RETURN" not in head:
                return
            simple = maybe_simple(head + fh.read(1 << 20))
        if simple is not None and simple.failed:
            raise code_error(simple, what, 200)

    def _log_retry(self, rule: Rule, retry: Retry, status: int, simple: SimpleReturn | None, what: str) -> None:
        if rule.name == RATE:
            log.warning("Qualys rate limit reached (%s); waiting %d s as Qualys asks",
                        f"CODE {simple.code}" if simple and simple.code else f"HTTP {status}", retry.wait)
        elif rule.name == "concurrency":
            log.warning("Qualys's concurrency limit is reached (CODE %s: %s); retrying in %d s",
                        simple.code if simple else "none",
                        simple.text if simple else "another call of this account is running", retry.wait)
        else:
            log.warning("Qualys answered HTTP %d to %s (maintenance?); retrying in %d s", status, what, retry.wait)

    def _translate(self, exc: httpx.HTTPError, what: str) -> QualysError:
        """httpx's exception → ours, with what to do about it."""
        reason = _reason(exc)
        if isinstance(exc, httpx.ProxyError):
            return QualysError(f"the proxy refused the connection to Qualys for {what}: {reason}",
                               "check proxy, proxy_username and proxy_password")
        if isinstance(exc, httpx.ConnectError):
            if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
                return QualysError(f"the TLS certificate of {mask_url(self.url)} could not be verified ({reason})",
                                   "set ca_bundle to the CA that signed it (verify: n turns checking off; "
                                   "do not do that in production)")
            return QualysError(f"cannot connect to Qualys at {mask_url(self.url)} for {what}: {reason}",
                               "check url, the network path to port 443 and the proxy settings")
        if isinstance(exc, httpx.TimeoutException):
            return QualysError(f"Qualys at {mask_url(self.url)} did not answer {what} within {self.timeout:.0f} s",
                               "try again later, or raise timeout in QualysGuard.yaml")
        return QualysError(f"the connection to Qualys broke during {what}: {reason}", "run again")

    def _throttle(self, path: str, what: str) -> None:
        """Spec §7.2: when the last answer of this endpoint said no calls are left and how long to
        wait, wait before calling rather than earn a 409 (when the wait fits in max_wait)."""
        limits = self._limits_by_path.get(path)
        if limits is None or limits.remaining != 0 or not limits.to_wait_sec:
            return
        wait = limits.to_wait_sec
        if self.retry.fits(wait):
            log.warning("Qualys said no API calls are left in this window; waiting %d s before %s", wait, what)
            self.retry.sleep(self.retry.asked_wait(wait) + self.retry.jitter())
        self._limits_by_path.pop(path, None)

    def _stream(self, path: str, data: dict, dest: str, what: str):
        """A 200 answer goes to ``dest`` chunk by chunk (memory stays flat); any other is read.

        ``timeout`` is the read timeout (no byte for that long fails), and the whole download
        must end within what is left of ``max_wait``: a server trickling a byte now and then
        cannot keep a run alive for ever.
        """
        deadline = self.retry.deadline
        with self._http.stream("POST", path, data=data) as response:
            if response.status_code != 200:
                return read_capped(response), response
            self.live.phase("downloading", total=as_int(response.headers.get("content-length")) or None)
            # the report: vulnerability data, 0600 whatever the umask; a full disk is DiskFull
            with writing("the downloaded report", dest), create_private(dest) as out:
                for chunk in response.iter_bytes():     # as it arrives: the deadline is checked per piece
                    if self.stop():
                        raise Interrupted(f"stopped on request while {what}")
                    out.write(chunk)
                    self.live.update(bytes=response.num_bytes_downloaded)
                    if deadline is not None and self.clock() > deadline:
                        raise QualysError(f"{what} did not finish within max_wait ({self.max_wait:.0f} s); "
                                          f"{out.tell()} bytes arrived",
                                          "Qualys or the network path is very slow; run again later, or raise "
                                          "max_wait in QualysGuard.yaml")
            return b"", response


def redirect_error(response: httpx.Response, what: str) -> QualysError:
    """A 3xx: we never follow it, since the credentials would go along to wherever it points."""
    location = response.headers.get("Location") or "no Location given"
    return QualysError(f"Qualys answered {what} with a redirect (HTTP {response.status_code} to "
                       f"{mask_url(location)[:200]}), which is not followed: the credentials would go with it",
                       "check url: it must be your platform's API server (qualysapi.*) itself, with https://",
                       status=response.status_code)


def maybe_simple(body: bytes) -> SimpleReturn | None:
    """The SIMPLE_RETURN in ``body``, or None when it is something else."""
    if not body or b"SIMPLE_RETURN" not in body[:2048]:
        return None
    try:
        return parse_simple_return(body)
    except ResponseFormatError:
        return None


def code_error(simple: SimpleReturn, what: str, status: int) -> QualysError:
    """A SIMPLE_RETURN with a CODE as our error, naming the call, the CODE and Qualys's text."""
    message = f"Qualys refused {what}: CODE {simple.code}: {simple.text}"
    signature = simple.item("Incident Signature")
    if signature:
        message += f" ({signature})"
    if simple.code in ("1903", "1905"):
        return QualysError(message, "a parameter was refused; report this if it persists",
                           code=simple.code, text=simple.text, status=status)
    return QualysError(message, "see Qualys's text; run again later if it is temporary",
                       code=simple.code, text=simple.text, status=status)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]

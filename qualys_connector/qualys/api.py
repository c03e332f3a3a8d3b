"""Qualys VM API v2 client (httpx): report lifecycle and asset IP lists, with Qualys's limits honoured.

Every call is a POST with a form body (IP lists never go into a URL), basic auth and the
mandatory ``X-Requested-With`` header, with explicit timeouts. httpx errors and Qualys error
documents are translated into the ``errors.py`` tree here, in ``_call``, and nowhere else.
Retries: CODE 1965 (rate limit) and HTTP 429 wait what Qualys asks (plus a little jitter, so
parallel runs do not come back in step), unless that exceeds what is left of ``max_wait``;
CODE 1960 (concurrency) and CODE 2014 (too many concurrent logins; unverified, spec §4.2 says
"maybe" retry) back off a bounded number of times; 502/503/504 are retried; every other error
is final and carries Qualys's CODE and TEXT. Limits are kept per endpoint (as Qualys counts
them): when an endpoint's last answer said none are left and how long to wait, the next call
of that endpoint waits first instead of earning a 409. An answer that is not the XML we expect is a
``QualysError`` too (``_parse``), never a bare ValueError.
"""
from __future__ import annotations

import random
import re
import time
from typing import Callable

import httpx

from .. import __version__
from ..errors import EXIT_USAGE, Interrupted, QualysAuthError, QualysError, QualysReportError
from ..logsetup import add_secret, get_logger, mask_url
from .responses import (Limits, ReportStatus, ResponseFormatError, SimpleReturn, chunk_ips, collapse_ranges,
                        as_int, parse_ip_list, parse_limits, parse_report_list, parse_simple_return)

log = get_logger()

REPORT = "/api/2.0/fo/report/"
ASSET_IP = "/api/2.0/fo/asset/ip/"
EXCLUDED_IP = "/api/2.0/fo/asset/excluded_ip/"

# 2000 (bad login) and 2010 are unverified in public sources (spec §4.2; 2010 only in the seed);
# we treat them, like the documented 2001/2003/2007/2011, as "a person must act".
AUTH_CODES = {"2000", "2010", "2001", "2003", "2007", "2011"}
LOGIN_BUSY_CODE = "2014"       # too many concurrent logins [unverified]: retried like 1960
# The report-slot limit is known only by its TEXT; no CODE for it is public (spec §2.1). Matched on
# the text whether or not a CODE comes with it, so a CODE added by Qualys does not make it fatal.
BUSY_TEXT = "max number of allowed reports already running"
CONCURRENCY_BACKOFF = (15, 30, 60, 60, 60)
UNAVAILABLE_BACKOFF = (10, 30, 60)
_ROOT = re.compile(rb"<([A-Za-z_][\w.-]*)")

_AUTH_HINT = ("check user_id and password (or QC_QUALYS_PASSWORD), and that url is your platform's API "
              "server (qualysapi.*, see the README)")


class QualysClient:
    def __init__(self, url: str, user: str, password: str, *, proxy: str | None = None,
                 proxy_username: str | None = None, proxy_password: str | None = None,
                 verify: bool | str = True, timeout: float = 60.0, poll_interval: float = 30.0,
                 max_wait: float = 3600.0, user_agent: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = lambda: random.uniform(1.0, 3.0),
                 transport: httpx.BaseTransport | None = None, auth_hint: str | None = None,
                 stop: Callable[[], bool] | None = None):
        add_secret(password)
        add_secret(proxy_password)
        self.url, self.user = url.rstrip("/"), user
        self.poll_interval, self.max_wait, self.timeout = poll_interval, max_wait, timeout
        self.sleep, self.clock, self.jitter = sleep, clock, jitter
        self.stop = stop or (lambda: False)            # checked between chunks of a download
        self.auth_hint = auth_hint or _AUTH_HINT      # names the keys of the caller's config file
        self.limits = Limits()
        self._limits_by_path: dict[str, Limits] = {}   # Qualys counts limits per API endpoint
        self._started = clock()
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

    def __enter__(self) -> "QualysClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the one boundary
    def _budget_left(self) -> float:
        return self.max_wait - (self.clock() - self._started)

    def _call(self, path: str, data: dict, what: str, *, stream_to: str | None = None) -> bytes:
        """POST and return the body (or stream it into ``stream_to``); retries per the module doc."""
        concurrency_tries = unavailable_tries = rate_tries = 0
        self._throttle(path, what)
        while True:
            try:
                if stream_to is None:
                    response = self._http.post(path, data=data)
                    body = response.content
                else:
                    body, response = self._stream(path, data, stream_to, what)
            except httpx.ProxyError as exc:
                raise QualysError(f"the proxy refused the connection to Qualys for {what}: {_reason(exc)}",
                                  "check proxy, proxy_username and proxy_password") from None
            except httpx.ConnectError as exc:
                reason = _reason(exc)
                if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason:
                    raise QualysError(f"the TLS certificate of {mask_url(self.url)} could not be verified ({reason})",
                                      "set ca_bundle to the CA that signed it (verify: n turns checking off; "
                                      "do not do that in production)") from None
                raise QualysError(f"cannot connect to Qualys at {mask_url(self.url)} for {what}: {reason}",
                                  "check url, the network path to port 443 and the proxy settings") from None
            except httpx.TimeoutException:
                raise QualysError(f"Qualys at {mask_url(self.url)} did not answer {what} within {self.timeout:.0f} s",
                                  "try again later, or raise timeout in QualysGuard.yaml") from None
            except httpx.HTTPError as exc:
                raise QualysError(f"the connection to Qualys broke during {what}: {_reason(exc)}",
                                  "run again") from None
            self.limits = self._limits_by_path[path] = parse_limits(response.headers)
            if self.limits.remaining is not None and self.limits.remaining <= 10:
                log.warning("only %d Qualys API calls left in this window", self.limits.remaining)
            status = response.status_code
            simple = _maybe_simple(body)
            if status == 407:
                raise QualysAuthError("the proxy asks for credentials (HTTP 407)",
                                      "set proxy_username and proxy_password (or QC_PROXY_PASSWORD)")
            if status == 401 or (simple and simple.code in AUTH_CODES):
                code = simple.code if simple else None
                text = simple.text if simple else "Unauthorized"
                raise QualysAuthError(f"Qualys refused {what} for user {self.user}: "
                                      f"{'CODE ' + code + ': ' if code else ''}{text} (HTTP {status})",
                                      self.auth_hint, code=code, text=text, status=status)
            if (status == 409 and simple is not None and simple.code == "1965") or status == 429:
                # 429 belongs to Qualys's gateway APIs, not /api/2.0/fo/ (spec §4.3); handled alike anyway.
                wait = (self.limits.to_wait_sec or as_int(response.headers.get("Retry-After"))
                        or (as_int(simple.item("SECONDS_TO_WAIT")) if simple else None) or 60)
                code = simple.code if simple else None
                text = simple.text if simple else "Too Many Requests"
                rate_tries += 1
                if wait > self._budget_left() or rate_tries > 10:
                    raise QualysError(f"Qualys's API rate limit is used up: {'CODE ' + code if code else f'HTTP {status}'}: "
                                      f"{text}", f"Qualys asks to wait {wait} s, longer than max_wait allows; run later",
                                      code=code, text=text, status=status)
                log.warning("Qualys rate limit reached (%s); waiting %d s as Qualys asks",
                            f"CODE {code}" if code else f"HTTP {status}", wait)
                self.sleep(wait + self.jitter())
                continue
            busy_login = simple is not None and simple.code == LOGIN_BUSY_CODE
            if (status == 409 and (simple is None or simple.code == "1960")) or busy_login:
                if concurrency_tries < len(CONCURRENCY_BACKOFF):
                    wait = CONCURRENCY_BACKOFF[concurrency_tries]
                    concurrency_tries += 1
                    log.warning("Qualys's concurrency limit is reached (CODE %s: %s); retrying in %d s",
                                simple.code if simple else "none",
                                simple.text if simple else "another call of this account is running", wait)
                    self.sleep(wait)
                    continue
            if status in (502, 503, 504) and unavailable_tries < len(UNAVAILABLE_BACKOFF):
                wait = UNAVAILABLE_BACKOFF[unavailable_tries]
                unavailable_tries += 1
                log.warning("Qualys answered HTTP %d to %s (maintenance?); retrying in %d s", status, what, wait)
                self.sleep(wait)
                continue
            if simple is not None and BUSY_TEXT in simple.text.lower():
                return body                      # launch_report waits for a free report slot
            if simple is not None and simple.failed:
                raise _code_error(simple, what, status)
            if status >= 400:
                raise QualysError(f"Qualys answered HTTP {status} to {what}",
                                  "run again later; if it persists, check url", status=status)
            return body

    def _throttle(self, path: str, what: str) -> None:
        """Spec §7.2: when the last answer of this endpoint said no calls are left and how long to
        wait, wait before calling rather than earn a 409 (when the wait fits in max_wait)."""
        limits = self._limits_by_path.get(path)
        if limits is None or limits.remaining != 0 or not limits.to_wait_sec:
            return
        wait = limits.to_wait_sec
        if wait <= self._budget_left():
            log.warning("Qualys said no API calls are left in this window; waiting %d s before %s", wait, what)
            self.sleep(wait + self.jitter())
        self._limits_by_path.pop(path, None)

    def _stream(self, path: str, data: dict, dest: str, what: str):
        with self._http.stream("POST", path, data=data,
                               timeout=httpx.Timeout(max(self.timeout, 300.0), connect=15.0)) as response:
            if response.status_code != 200:
                return response.read(), response
            head = b""
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    if self.stop():
                        raise Interrupted(f"stopped on request while {what}")
                    if len(head) < 4096:
                        head += chunk[:4096]
                    out.write(chunk)
            match = _ROOT.search(_strip_prolog(head))
            root = match.group(1).decode() if match else None
            if root == "SIMPLE_RETURN":
                with open(dest, "rb") as fh:
                    return fh.read(1 << 20), response
            if root is None:
                raise QualysReportError(f"Qualys sent an empty or unreadable body for {what}",
                                        "run again; the report may have expired")
            return b"", response

    # ------------------------------------------------------------------ reports
    def launch_report(self, template_id: str) -> str:
        data = {"action": "launch", "template_id": str(template_id), "output_format": "xml",
                "report_title": f"qualys-connector template {template_id}"}
        for attempt in range(6):
            what = f"launching the report of template {template_id}"
            simple = _parse(parse_simple_return, self._call(REPORT, data, what), what)
            report_id = simple.item("ID")
            if report_id:
                log.info("Qualys launched report %s for template %s", report_id, template_id)
                return report_id
            if BUSY_TEXT in simple.text.lower() and attempt < 5:
                wait = 30 * (attempt + 1)
                log.warning("Qualys: %s; trying again in %d s", simple.text, wait)
                self.sleep(wait)
                continue
            raise QualysReportError(f"Qualys did not launch the report of template {template_id}: {simple.text}",
                                    "check template_id and that it makes an XML scan report", text=simple.text)
        raise QualysReportError("Qualys kept answering that the maximum number of reports is running",
                                "run again later")

    def report_status(self, report_id: str) -> ReportStatus:
        what = f"the status of report {report_id}"
        return _parse(lambda body: parse_report_list(body, report_id),
                      self._call(REPORT, {"action": "list", "id": str(report_id)}, what), what)

    def wait_for_report(self, report_id: str, progress: Callable[[ReportStatus], None] | None = None) -> None:
        started = self.clock()
        last_state = None
        while True:
            status = self.report_status(report_id)
            if status.state == "Finished":
                log.info("report %s is finished", report_id)
                return
            if status.state in ("Submitted", "Running"):
                if status.state != last_state or (status.percent and progress is None):
                    log.info("report %s is %s%s", report_id, status.state,
                             f" ({status.percent}%)" if status.percent else "")
                last_state = status.state
                if progress:
                    progress(status)
                waited = self.clock() - started
                if waited >= self.max_wait:
                    raise QualysReportError(f"report {report_id} is still {status.state} after {waited:.0f} s",
                                            "raise max_wait in QualysGuard.yaml or use a smaller template")
                self.sleep(self.poll_interval)
                continue
            if status.state is None:
                error = QualysReportError(f"report {report_id} vanished from Qualys's report list "
                                          "(deleted or expired)", "run again")
            else:
                error = QualysReportError(f"Qualys could not build report {report_id}: state {status.state}"
                                          f"{': ' + ' '.join(status.message.split()) if status.message else ''}",
                                          "check the template in Qualys and run again")
            error.report_over = True
            raise error

    def fetch_report(self, report_id: str, dest: str) -> None:
        body = self._call(REPORT, {"action": "fetch", "id": str(report_id)}, f"downloading report {report_id}",
                          stream_to=dest)
        if body:
            simple = _maybe_simple(body)
            if simple is not None:
                raise _code_error(simple, f"downloading report {report_id}", 200) if simple.failed else \
                    QualysReportError(f"Qualys sent a message instead of report {report_id}: {simple.text}")

    def delete_report(self, report_id: str) -> None:
        self._best_effort(report_id, "delete", "deleting", "deleted report %s from Qualys")

    def cancel_report(self, report_id: str) -> None:
        """Stop a report that is still being built, so it does not hold one of the account's slots."""
        self._best_effort(report_id, "cancel", "canceling", "canceled report %s, which Qualys was still building")

    def _best_effort(self, report_id: str, action: str, doing: str, done: str) -> None:
        """Clean-up calls: a failure is a warning, never the reason a run fails."""
        try:
            self._call(REPORT, {"action": action, "id": str(report_id)}, f"{doing} report {report_id}")
            log.info(done, report_id)
        except QualysError as exc:
            log.warning("could not %s report %s in Qualys: %s", action, report_id, exc.message)

    def download_report(self, template_id: str, dest: str, progress=None) -> str:
        """Launch → wait → fetch (streamed to ``dest``) → delete; returns the report ID.

        A report given up while Qualys still builds it (max_wait, SIGTERM) is canceled first
        (spec §2.4: ``action=cancel`` stops a running report), then deleted.
        """
        report_id = self.launch_report(template_id)
        finished = False
        try:
            self.wait_for_report(report_id, progress)
            finished = True
            self.fetch_report(report_id, dest)
        except BaseException as exc:
            # Errors/Canceled/vanished reports are over; anything else may still be running.
            if not finished and getattr(exc, "report_over", False) is False:
                self.cancel_report(report_id)
            raise
        finally:
            self.delete_report(report_id)
        return report_id

    def probe_concurrency_limit(self) -> int | None:
        """One cheap call to learn ``X-Concurrency-Limit-Limit`` for the report API."""
        self._call(REPORT, {"action": "list", "id": "0"}, "reading the API limits")
        return self.limits.concurrency_limit

    # ------------------------------------------------------------------ asset IPs
    def _ip_action(self, path: str, action: str, ips: list[str], what: str, **extra) -> str:
        texts = []
        for chunk in chunk_ips(collapse_ranges(ips)):
            data = {"action": action, "ips": ",".join(chunk), **{k: v for k, v in extra.items() if v is not None}}
            texts.append(_parse(parse_simple_return, self._call(path, data, what), what).text)
        return "; ".join(dict.fromkeys(texts))

    def add_ips(self, ips: list[str], *, enable_vm: bool = True, comment: str | None = None) -> str:
        return self._ip_action(ASSET_IP, "add", ips, "adding IPs to the subscription",
                               enable_vm="1" if enable_vm else "0", comment=comment)

    def list_ips(self) -> list[str]:
        what = "listing the subscription's IPs"
        return _parse(parse_ip_list, self._call(ASSET_IP, {"action": "list"}, what), what)

    def add_excluded_ips(self, ips: list[str], comment: str, expiry_days: int | None = None) -> str:
        return self._ip_action(EXCLUDED_IP, "add", ips, "adding IPs to the excluded list",
                               comment=comment[:1024], expiry_days=str(expiry_days) if expiry_days else None)

    def remove_excluded_ips(self, ips: list[str], comment: str) -> str:
        return self._ip_action(EXCLUDED_IP, "remove", ips, "removing IPs from the excluded list",
                               comment=comment[:1024])

    def list_excluded_ips(self) -> list[str]:
        what = "listing the excluded IPs"
        return _parse(parse_ip_list, self._call(EXCLUDED_IP, {"action": "list"}, what), what)


def _parse(parser, body: bytes, what: str):
    """Run a response parser; an answer that is not the document we expect becomes a QualysError."""
    try:
        return parser(body)
    except ResponseFormatError as exc:
        raise QualysError(f"Qualys sent an unexpected answer to {what}: {exc}",
                          "run again; if it persists, check that url is your platform's API server "
                          "(qualysapi.*), not the web UI") from None


def _strip_prolog(head: bytes) -> bytes:
    head = re.sub(rb"<\?.*?\?>", b"", head, flags=re.S)
    head = re.sub(rb"<!--.*?-->", b"", head, flags=re.S)
    return re.sub(rb"<!DOCTYPE[^>]*>", b"", head, flags=re.S)


def _maybe_simple(body: bytes) -> SimpleReturn | None:
    if not body or b"SIMPLE_RETURN" not in body[:2048]:
        return None
    try:
        return parse_simple_return(body)
    except ResponseFormatError:
        return None


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _code_error(simple: SimpleReturn, what: str, status: int) -> QualysError:
    message = f"Qualys refused {what}: CODE {simple.code}: {simple.text}"
    signature = simple.item("Incident Signature")
    if signature:
        message += f" ({signature})"
    if simple.code == "999" and "launch" in what:
        error = QualysReportError(message, "check template_id: Qualys answers CODE 999 for a template ID that "
                                  "does not exist or is not an XML scan template",
                                  code=simple.code, text=simple.text, status=status)
        error.exit_code = EXIT_USAGE       # a person must fix template_id; retrying will not help
        return error
    if simple.code in ("1903", "1905"):
        return QualysError(message, "a parameter was refused; report this if it persists",
                           code=simple.code, text=simple.text, status=status)
    return QualysError(message, "see Qualys's text; run again later if it is temporary",
                       code=simple.code, text=simple.text, status=status)

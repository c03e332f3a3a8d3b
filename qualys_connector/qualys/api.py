"""Qualys VM API v2: what we ask of it (report lifecycle, asset and excluded IP lists).

How we ask (httpx, auth, limits per endpoint, retries, error translation) is ``transport.py``;
this module only knows the API's actions and the documents they answer with. An answer that
is not the XML we expect is a ``QualysError`` too (``_parse``), never a bare ValueError.
"""
from __future__ import annotations

import random
import time
from typing import Callable

import httpx

from ..errors import QualysError, QualysReportError, QualysReportOver, QualysTemplateError
from ..logsetup import get_logger
from ..progress import NO_PROGRESS, Progress
from ..report.xmlguard import inspect_root
from ..retry import RetryExhausted
from .detections import DETECTION_PATH
from .knowledgebase import KB_PATH
from .responses import (ReportStatus, ResponseFormatError, chunk_ips, collapse_ranges, parse_ip_list,
                        parse_report_list, parse_simple_return)
from .transport import BUSY_TEXT, REPORT_SLOT, QualysTransport, code_error, maybe_simple

log = get_logger()

REPORT = "/api/2.0/fo/report/"
ASSET_IP = "/api/2.0/fo/asset/ip/"
EXCLUDED_IP = "/api/2.0/fo/asset/excluded_ip/"
TEMPLATE_CODE = "999"
_LIST_CALLS = {DETECTION_PATH: "the host detection pull", KB_PATH: "the KnowledgeBase call"}       # Qualys's answer to launching a template that does not exist


class QualysClient:
    def __init__(self, url: str, user: str, password: str, *, proxy: str | None = None,
                 proxy_username: str | None = None, proxy_password: str | None = None,
                 verify: bool | str = True, timeout: float = 60.0, poll_interval: float = 30.0,
                 max_wait: float = 3600.0, user_agent: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 jitter: Callable[[], float] = lambda: random.uniform(1.0, 3.0),
                 transport: httpx.BaseTransport | None = None, auth_hint: str | None = None,
                 stop: Callable[[], bool] | None = None, live: Progress = NO_PROGRESS):
        self.live = live                    # report state, download bytes: for a person at a terminal
        self.poll_interval, self.max_wait, self.clock = poll_interval, max_wait, clock
        self.transport = QualysTransport(url, user, password, proxy=proxy, proxy_username=proxy_username,
                                         proxy_password=proxy_password, verify=verify, timeout=timeout,
                                         max_wait=max_wait, user_agent=user_agent, sleep=sleep, clock=clock,
                                         jitter=jitter, transport=transport, auth_hint=auth_hint, stop=stop, live=live)
        self.url = self.transport.url
        self._call = self.transport.call

    @classmethod
    def for_config(cls, cfg, **more) -> "QualysClient":
        """A client for the connection keys of a QualysGuard.yaml (url, credentials, proxy, TLS,
        timeout); ``more`` adds what the caller's run needs (polling, sleep, stop...)."""
        return cls(cfg.url, cfg.user_id, cfg.password, proxy=cfg.proxy, proxy_username=cfg.proxy_username,
                   proxy_password=cfg.proxy_password, verify=cfg.tls_verify, timeout=cfg.timeout, **more)

    @property
    def limits(self):
        """The limit headers of the last answer (``responses.Limits``)."""
        return self.transport.limits

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "QualysClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ reports
    def launch_report(self, template_id: str) -> str:
        data = {"action": "launch", "template_id": str(template_id), "output_format": "xml",
                "report_title": f"qualys-connector template {template_id}"}
        what = f"launching the report of template {template_id}"
        retry = self.transport.retry
        while True:
            try:
                simple = _parse(parse_simple_return, self._call(REPORT, data, what), what)
            except QualysError as exc:
                if exc.code == TEMPLATE_CODE:     # a person must fix template_id; retrying will not help
                    raise QualysTemplateError(exc.message, "check template_id: Qualys answers CODE 999 for a "
                                              "template ID that does not exist or is not an XML scan template",
                                              code=exc.code, text=exc.text, status=exc.status) from None
                raise
            report_id = simple.item("ID")
            if report_id:
                log.info("Qualys launched report %s for template %s", report_id, template_id)
                return report_id
            if BUSY_TEXT not in simple.text.lower():
                raise QualysReportError(f"Qualys did not launch the report of template {template_id}: {simple.text}",
                                        "check template_id and that it makes an XML scan report", text=simple.text)
            try:
                retry = retry.increment(REPORT_SLOT)
            except RetryExhausted:
                raise QualysReportError("Qualys kept answering that the maximum number of reports is running",
                                        "run again later") from None
            log.warning("Qualys: %s; trying again in %d s", simple.text, retry.wait)
            retry.sleep()

    def report_status(self, report_id: str) -> ReportStatus:
        what = f"the status of report {report_id}"
        return _parse(lambda body: parse_report_list(body, report_id),
                      self._call(REPORT, {"action": "list", "id": str(report_id)}, what), what)

    def wait_for_report(self, report_id: str, progress: Callable[[ReportStatus], None] | None = None) -> None:
        started = self.clock()
        last_state = None
        self.live.phase(f"Qualys builds report {report_id}")
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
                self.live.update(state=f"{status.state} {status.percent}%" if status.percent else status.state,
                                 waited=waited, left=max(0.0, self.max_wait - waited))
                if waited >= self.max_wait:
                    raise QualysReportError(f"report {report_id} is still {status.state} after {waited:.0f} s",
                                            "raise max_wait in QualysGuard.yaml or use a smaller template")
                self.transport.sleep(self.poll_interval)
                continue
            if status.state is None:
                raise QualysReportOver(f"report {report_id} vanished from Qualys's report list "
                                       "(deleted or expired)", "run again")
            raise QualysReportOver(f"Qualys could not build report {report_id}: state {status.state}"
                                   f"{': ' + ' '.join(status.message.split()) if status.message else ''}",
                                   "check the template in Qualys and run again")

    def fetch_report(self, report_id: str, dest: str) -> None:
        """Stream the report into ``dest``; a SIMPLE_RETURN sent instead of it is an error here."""
        what = f"downloading report {report_id}"
        self._call(REPORT, {"action": "fetch", "id": str(report_id)}, what, stream_to=dest)
        if inspect_root(dest) != "SIMPLE_RETURN":
            return                               # the report reader checks the rest
        with open(dest, "rb") as fh:
            simple = maybe_simple(fh.read(1 << 20))
        if simple is not None and simple.failed:
            raise code_error(simple, what, 200)
        raise QualysReportError(f"Qualys sent a message instead of report {report_id}: "
                                f"{simple.text if simple else 'unreadable SIMPLE_RETURN'}")

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

    def download_report(self, template_id: str, dest: str, progress=None,
                        on_launch: Callable[[str], None] | None = None) -> str:
        """Launch → wait → fetch (streamed to ``dest``) → delete; returns the report ID.

        A report given up while Qualys still builds it (max_wait, SIGTERM) is canceled first
        (docs/qualys-api.md §2.4: ``action=cancel`` stops a running report), then deleted.
        ``on_launch`` learns the report ID before the wait (to remember it should the run be killed).
        """
        report_id = self.launch_report(template_id)
        if on_launch is not None:
            on_launch(report_id)
        finished = False
        try:
            self.wait_for_report(report_id, progress)
            finished = True
            self.fetch_report(report_id, dest)
        except QualysReportOver:
            raise                                # Errors/Canceled/vanished: nothing to cancel
        except BaseException:
            if not finished:                     # max_wait, SIGTERM: Qualys may still be building it
                self.cancel_report(report_id)
            raise
        finally:
            self.delete_report(report_id)
        return report_id

    def probe_concurrency_limit(self) -> int | None:
        """One cheap call to learn ``X-Concurrency-Limit-Limit`` for the report API."""
        self._call(REPORT, {"action": "list", "id": "0"}, "reading the API limits")
        return self.limits.concurrency_limit

    # ------------------------------------------------------------------ list calls (detections, KB)
    def post(self, path: str, form: dict, dest: str) -> None:
        """The ``Post`` of ``qualys/detections.py`` and ``qualys/knowledgebase.py``: the answer streamed
        into ``dest``, with this client's retries, limits per endpoint and timeouts."""
        self.transport.fetch(path, form, dest, _LIST_CALLS.get(path, f"the call of {path}"))

    # ------------------------------------------------------------------ asset IPs
    def _ip_action(self, path: str, action: str, ips: list, what: str, **extra) -> str:
        """``ips``: addresses, ranges or CIDR blocks as text, or ``ipaddress`` objects."""
        texts = []
        for chunk in chunk_ips(collapse_ranges(ips)):
            data = {"action": action, "ips": ",".join(chunk), **{k: v for k, v in extra.items() if v is not None}}
            texts.append(_parse(parse_simple_return, self._call(path, data, what), what).text)
        return "; ".join(dict.fromkeys(texts))

    def add_ips(self, ips: list, *, enable_vm: bool = True, comment: str | None = None) -> str:
        return self._ip_action(ASSET_IP, "add", ips, "adding IPs to the subscription",
                               enable_vm="1" if enable_vm else "0", comment=comment)

    def list_ips(self) -> list[str]:
        what = "listing the subscription's IPs"
        return _parse(parse_ip_list, self._call(ASSET_IP, {"action": "list"}, what), what)

    def add_excluded_ips(self, ips: list, comment: str, expiry_days: int | None = None) -> str:
        return self._ip_action(EXCLUDED_IP, "add", ips, "adding IPs to the excluded list",
                               comment=comment[:1024], expiry_days=str(expiry_days) if expiry_days else None)

    def remove_excluded_ips(self, ips: list, comment: str) -> str:
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

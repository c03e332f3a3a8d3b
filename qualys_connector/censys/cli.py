"""``censys-qualys once|run``: the Censys ASM → Qualys sync as a one-shot or a long-running loop."""
from __future__ import annotations

import os
import signal
import sys
import threading

import click

from ..errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, ConnectorError, Interrupted
from ..locking import RunLock
from ..logsetup import configure
from .position import Position


def _common(f):
    for decorator in reversed([
        click.option("--settings", "settings_path", default="settings.yaml", show_default=True, metavar="FILE",
                     envvar="CQ_SETTINGS", help="The settings file (see settings_example.yaml); env CQ_SETTINGS."),
        click.option("--state-dir", metavar="DIR", envvar="CQ_STATE_DIR",
                     help="Where the position is saved (default: beside the settings); env CQ_STATE_DIR."),
        click.option("--reset", is_flag=True, help="Ignore the saved position and start from idFrom."),
        click.option("--level", type=click.IntRange(0, 3), default=2, show_default=True,
                     help="0 error, 1 warning, 2 info, 3 debug."),
        click.option("--logfile", metavar="FILE", help="Append the log to FILE."),
        click.option("--syslog", is_flag=True, help="Log to syslog as well."),
    ]):
        f = decorator(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Add hosts Censys ASM associates to your attack surface to Qualys VM; exclude the ones it drops.

    Exit codes: 0 done, 1 configuration or authentication error, 2 run-time failure (the position
    is kept), 75 another run holds the lock.
    """


@main.command()
@_common
def once(settings_path, state_dir, reset, level, logfile, syslog):
    """Run one cycle and exit (for cron)."""
    sys.exit(_run(settings_path, state_dir, reset, level, logfile, syslog, loop=False))


@main.command()
@_common
def run(settings_path, state_dir, reset, level, logfile, syslog):
    """Run a cycle every `interval` minutes until SIGTERM/SIGINT."""
    sys.exit(_run(settings_path, state_dir, reset, level, logfile, syslog, loop=True))


def _run(settings_path, state_dir, reset, level, logfile, syslog, *, loop: bool) -> int:
    from ..qualys.api import QualysClient
    from . import settings as settings_module
    from .api import CensysClient
    from .sync import run_cycle

    log = configure(level, syslog=syslog, logfile=logfile, stderr=not logfile and not syslog, ident="censys-qualys")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        settings = settings_module.load(settings_path)
        state_dir = state_dir or os.path.dirname(os.path.abspath(settings_path))
        os.makedirs(state_dir, exist_ok=True)
        position = Position(state_dir)
        with RunLock(position.path, os.path.join(state_dir, "censys-qualys.lock")):
            first = True
            if loop and not settings.startup:
                log.info("startup is false: first cycle in %d minutes", settings.interval)
                if stop.wait(settings.interval * 60):
                    return EXIT_OK
            while True:
                code = EXIT_OK
                try:
                    with CensysClient(settings.asm_api_key, settings.asm_api_url, sleep=_sleeper(stop)) as censys, \
                            QualysClient(settings.qualys_api_url, settings.qualys_username, settings.qualys_password,
                                         proxy=settings.proxy, proxy_username=settings.proxy_username,
                                         proxy_password=settings.proxy_password, verify=settings.verify,
                                         timeout=settings.timeout, sleep=_sleeper(stop)) as qualys:
                        result = run_cycle(settings, censys, qualys, position, reset=reset and first, stop=stop)
                    log.info("Summary: events=%d batches=%d added=%d excluded=%d unexcluded=%d "
                             "ipv6_skipped=%d next_id=%s%s", result.events, result.batches, result.added,
                             result.excluded, result.unexcluded, result.ipv6_skipped, result.next_id,
                             " (trialMode cap reached)" if result.trial_capped else "")
                except Interrupted:
                    log.info("stopped; the position of the last accepted batch is saved")
                    return EXIT_OK if loop else EXIT_FAILURE
                except ConnectorError as exc:
                    if exc.exit_code == EXIT_USAGE or not loop:   # config/auth: no point retrying
                        raise
                    log.error("%s; the position is kept, the next cycle tries again", exc)
                    code = exc.exit_code
                first = False
                if not loop:
                    return code
                log.info("next cycle in %d minutes", settings.interval)
                if stop.wait(settings.interval * 60):
                    return EXIT_OK
    except ConnectorError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Exception as exc:  # a bug: one line, the traceback at debug level
        log.debug("internal error", exc_info=True)
        log.error("internal error (%s: %s); please report it with the output of --level 3", type(exc).__name__, exc)
        return EXIT_FAILURE


def _sleeper(stop: threading.Event):
    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Interrupted("stopped while waiting")
    return sleep


if __name__ == "__main__":
    main()

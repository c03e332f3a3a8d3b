"""``censys-qualys once|run``: the Censys ASM → Qualys sync as a one-shot or a long-running loop."""
from __future__ import annotations

import os
import sys
import threading
import time

import click

from .. import liveprogress, metrics
from ..edge import StopSignals, exit_code, fail, outcome as outcome_of, sleeper
from ..errors import EXIT_FAILURE, EXIT_OK, ActionRequired, ConnectorError, Interrupted
from ..locking import RunLock
from ..logsetup import configure, log_summary
from ..statedir import private_dir
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
        click.option("--quiet", is_flag=True, help="No live progress display at a terminal (NO_COLOR, TERM=dumb too)."),
        click.option("--metrics", "metrics_file", metavar="FILE", envvar="CQ_METRICS_FILE",
                     help="Write the Prometheus metrics of each cycle to FILE; env CQ_METRICS_FILE."),
    ]):
        f = decorator(f)
    return f


QUALYS_AUTH_HINT = ("check qualys_username and qualys_password (or QC_QUALYS_PASSWORD) in the settings file, "
                    "and that qualys_api_url is your platform's API server")


class _Group(click.Group):
    """Usage errors (no or unknown command, bad option) exit 1 like the project's other tools, not click's 2."""

    def parse_args(self, ctx, args):
        if not args:
            raise click.UsageError("missing command: once (one cycle) or run (a cycle every `interval` "
                                   "minutes)", ctx)
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            exc.show()
            sys.exit(exit_code(exc))
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort as exc:
            click.echo("Aborted!", err=True)
            sys.exit(exit_code(exc))
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Add hosts Censys ASM associates to your attack surface to Qualys VM; exclude the ones it drops.

    Exit codes: 0 done, 1 usage, configuration or authentication error, 2 run-time failure (the
    position is kept), 75 another run holds the lock.
    """


@main.command()
@_common
def once(settings_path, state_dir, reset, level, logfile, syslog, quiet, metrics_file):
    """Run one cycle and exit (for cron)."""
    sys.exit(_run(settings_path, state_dir, reset, level, logfile, syslog, loop=False, metrics_file=metrics_file,
                  quiet=quiet))


@main.command()
@_common
def run(settings_path, state_dir, reset, level, logfile, syslog, quiet, metrics_file):
    """Run a cycle every `interval` minutes until SIGTERM/SIGINT."""
    sys.exit(_run(settings_path, state_dir, reset, level, logfile, syslog, loop=True, metrics_file=metrics_file,
                  quiet=quiet))


def _run(settings_path, state_dir, reset, level, logfile, syslog, *, loop: bool, metrics_file=None,
         quiet: bool = False) -> int:
    log = configure(level, syslog=syslog, logfile=logfile, stderr=not logfile and not syslog, ident="censys-qualys")
    stop = threading.Event()
    reporter = metrics.Reporter("censys-qualys", metrics_file)     # operations hook: --metrics
    with StopSignals(stop, raise_interrupted=False) as signals:   # the loop waits on ``stop`` itself
        return _cycles(settings_path, state_dir, reset, log, stop, signals, reporter, loop=loop,
                       display=liveprogress.choose(quiet))


def _cycles(settings_path, state_dir, reset, log, stop: threading.Event, signals: StopSignals,
            reporter: "metrics.Reporter", *, loop: bool, display=None) -> int:
    from ..qualys.api import QualysClient
    from . import settings as settings_module
    from .api import CensysClient
    from .sync import CycleResult, run_cycle

    def report(result, outcome: str, code: int, started: float) -> None:
        reporter.write([metrics.from_cycle(result, outcome, code, started)], log)

    def stopped(position: Position, settings) -> None:
        log.info("stopped on %s; %s", signals.name, _where(position, settings))

    started = time.monotonic()
    try:
        reporter.check()
        settings = settings_module.load(settings_path)
        state_dir = str(private_dir(state_dir or os.path.dirname(os.path.abspath(settings_path)),
                                    "state directory", "choose another with --state-dir (or CQ_STATE_DIR)"))
        position = Position(state_dir)
        with RunLock(position.path, os.path.join(state_dir, "censys-qualys.lock")):
            first = True
            if loop and not settings.startup:
                log.info("startup is false: first cycle in %d minutes", settings.interval)
                if stop.wait(settings.interval * 60):
                    stopped(position, settings)
                    return EXIT_OK
            while True:
                code, outcome = EXIT_OK, "ok"
                result, started = CycleResult(), time.monotonic()
                try:
                    with CensysClient(settings.asm_api_key, settings.asm_api_url, sleep=sleeper(stop)) as censys, \
                            QualysClient(settings.qualys_api_url, settings.qualys_username, settings.qualys_password,
                                         proxy=settings.proxy, proxy_username=settings.proxy_username,
                                         proxy_password=settings.proxy_password, verify=settings.verify,
                                         timeout=settings.timeout, sleep=sleeper(stop),
                                         auth_hint=QUALYS_AUTH_HINT) as qualys:
                        with display or liveprogress.NoTerminal() as shown:      # a live row per cycle at a terminal
                            run_cycle(settings, censys, qualys, position, reset=reset and first, stop=stop,
                                      result=result, live=shown.row())
                except Interrupted:
                    stopped(position, settings)
                    report(result, "stopped", EXIT_OK if loop else EXIT_FAILURE, started)
                    _summary(log, result, "stopped")
                    return EXIT_OK if loop else EXIT_FAILURE
                except Exception as exc:
                    if isinstance(exc, ConnectorError) and loop and not isinstance(exc, ActionRequired):
                        code = fail(exc, log, suffix="; the position is kept, the next cycle tries again")
                        outcome = "failed"
                    else:           # once, a bug, or config/auth (no point retrying): the run ends
                        code = fail(exc, log, level_option="--level 3")
                        report(result, "failed", code, started)
                        _summary(log, result, "failed")
                        return code
                report(result, outcome, code, started)
                _summary(log, result, outcome)
                first = False
                if not loop:
                    return code
                log.info("next cycle in %d minutes", settings.interval)
                if stop.wait(settings.interval * 60):
                    stopped(position, settings)
                    return EXIT_OK
    except Exception as exc:
        code = fail(exc, log, level_option="--level 3")
        report(CycleResult(), outcome_of(exc), code, started)
        return code


def _summary(log, result, outcome: str) -> None:
    log_summary(log, "Summary: events=%d batches=%d added=%d excluded=%d unexcluded=%d ipv6_skipped=%d "
                "next_id=%s result=%s%s", result.events, result.batches, result.added, result.excluded, result.unexcluded,
             result.ipv6_skipped, "-" if result.next_id is None else result.next_id, outcome,
             " (trialMode cap reached)" if result.trial_capped else "")


def _where(position: Position, settings) -> str:
    """Where the next run starts, read back from the saved position (the truth, even after --reset)."""
    try:
        saved = position.load()
    except ConnectorError as exc:
        return str(exc)
    if saved is None:
        return f"no position saved yet: the next run starts at idFrom ({settings.id_from})"
    return f"the next run starts at logbook event {saved} (position saved in {position.path})"


if __name__ == "__main__":
    main(prog_name="censys-qualys")

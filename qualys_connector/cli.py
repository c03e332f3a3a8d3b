"""qualys-connector and process-multiple: Perl spellings in, one log line and a meaningful exit code out.

Errors become their one line and exit code through ``edge.fail`` (shared with censys-qualys);
nothing below this module prints or exits. The last log line of every run is the summary.
"""
from __future__ import annotations

import os
import sys
import threading

import click

import input_plugins

from . import __version__, argv as perl_argv, liveprogress, metrics
from .edge import StopSignals, exit_code, fail, outcome
from .errors import EXIT_OK, EXIT_USAGE
from .locking import RunLock
from .logsetup import configure, get_logger, log_summary
from .pipeline import Options, Summary, lock_key, prepare, run
from .plugin import use_plugins
from .secretenv import read_secret
from .serveraddr import check_server

use_plugins(input_plugins.load)     # the edge hands the core its plugins

COMMON_OPTIONS = {"server": True, "port": True, "plugininfo": True, "ipv6": False, "pkcs12": True,
                  "password": True, "syslog": False, "stderr": False, "logfile": True, "level": True,
                  "csvfile": True, "runondc": True, "help": False, "version": False,
                  "statedir": True, "fmcca": True, "insecure": False,
                  "metrics": True, "summaryjson": True, "quiet": False, "resync": False}   # newer than the Perl tools: see argv.py
MULTI_OPTIONS = dict(COMMON_OPTIONS, multiinfo=True, jobs=True)

OPTION_TABLE = """\
  -se[rver]=ADDR     FMC address (IPv4, IPv6 or name); required unless -csvfile
  -po[rt]=N          FMC host input port (default 8307)
  -pl[ugininfo]=F    plugin config: QualysGuard.yaml, or the CSV file for the csv plugin
  -i[pv6]            connect to the FMC over IPv6
  -pk[cs12]=F        client certificate (default: the only *.pkcs12 in this directory)
  -pa[ssword]=PW     PKCS#12 password; better: the QC_PKCS12_PASSWORD environment variable
  -sy[slog]          log to syslog
  -st[derr]          log to standard error (the default when no sink is given)
  -lo[gfile]=F       append the log to F
  -le[vel]=N         0 error, 1 warning, 2 info (default), 3 debug
  -c[svfile]=F       write the host input commands to F instead of sending them
  -r[unondc]=y|n     accepted for old crontabs; only n (run on a separate host) is supported
  -sta[tedir]=DIR    state and lock directory (default ~/.local/state/qualys-connector; env QC_STATE_DIR)
  -f[mcca]=F         CA file to verify the FMC's certificate (default: the CAs in the PKCS#12)
  -in[secure]        do not verify the FMC's certificate (warns)
  -me[trics]=F       write the run's Prometheus metrics to F after every run (env QC_METRICS_FILE)
  -su[mmaryjson]=F   write the run's summary as JSON to F after every run
  -q[uiet]           no live progress display at a terminal (none is drawn into files, pipes or cron mail)
  -re[sync]          pull: detections: pull every host this run, not only what changed (full_resync: y once)
  -h, --help         this help; -v, --version: the version
Options may be written -opt=V, -opt V, --opt=V, or as any unique prefix (-se, -serv).
Exit codes: 0 delivered, 1 usage/configuration error, 2 run-time failure, 75 another run holds the lock."""

MULTI_TABLE = """\
  -m[ultiinfo]=ID,ID template IDs to process, comma separated, no spaces (required)
  -j[obs]=N          templates processed at once (default 1; never more than Qualys's concurrency limit)"""


MULTI_OPTION_TABLE = OPTION_TABLE.replace("plugin config: QualysGuard.yaml, or the CSV file for the csv plugin",
                                          "QualysGuard.yaml")


def version_screen(prog: str) -> str:
    lines = [f"{prog} Ver. {__version__}", "",
             f"usage: {prog} [options] [plugin]" if prog == "qualys-connector"
             else f"usage: {prog} -multiinfo=ID1,ID2,... [options]", "",
             "options:", OPTION_TABLE]
    if prog == "process-multiple":
        lines[5:5] = [MULTI_TABLE]
        lines[-1] = MULTI_OPTION_TABLE
    lines += ["", "plugins (case-insensitive; QualysGuard is the default):" if prog == "qualys-connector"
              else "plugin: QualysGuard only (one run per template)"]
    for key in input_plugins.PLUGINS if prog == "qualys-connector" else ["qualysguard"]:
        plugin = input_plugins.load(key)
        lines.append(f"  {plugin.NAME} - {plugin.SUMMARY}")
        for name, text in plugin.PARAMETERS:
            lines.append(f"      {name}: {text}")
    return "\n".join(lines)


def _common(f, multi: bool = False):
    decorators = [
        click.option("--server", metavar="ADDR", help="FMC address; required unless --csvfile."),
        click.option("--port", type=click.IntRange(1, 65535), default=8307, show_default=True,
                     help="FMC host input port."),
        click.option("--plugininfo", metavar="FILE",
                     help="QualysGuard.yaml" + ("." if multi else ", or the CSV file to send with the csv plugin.")),
        click.option("--ipv6", is_flag=True, help="Connect to the FMC over IPv6."),
        click.option("--pkcs12", metavar="FILE", help="Client certificate; default: the only *.pkcs12 here."),
        click.option("--password", envvar="QC_PKCS12_PASSWORD", metavar="PW",
                     help="PKCS#12 password (prefer the QC_PKCS12_PASSWORD environment variable)."),
        click.option("--syslog", is_flag=True, help="Log to syslog."),
        click.option("--stderr", is_flag=True, help="Log to standard error."),
        click.option("--logfile", metavar="FILE", help="Append the log to FILE."),
        click.option("--level", type=click.IntRange(0, 3), default=2, show_default=True,
                     help="0 error, 1 warning, 2 info, 3 debug."),
        click.option("--csvfile", metavar="FILE", help="Write the commands to FILE instead of sending."),
        click.option("--runondc", hidden=True, default="n"),
        click.option("--statedir", metavar="DIR", help="State and lock directory (env QC_STATE_DIR)."),
        click.option("--fmcca", envvar="QC_FMC_CA", metavar="FILE",
                     help="CA file to verify the FMC's certificate (env QC_FMC_CA)."),
        click.option("--insecure", is_flag=True, help="Do not verify the FMC's certificate."),
        # --- operations hook (metrics): the run files for monitoring, written after every run
        click.option("--metrics", metavar="FILE", envvar="QC_METRICS_FILE",
                     help="Write the run's Prometheus metrics to FILE (env QC_METRICS_FILE)."),
        click.option("--summaryjson", metavar="FILE", help="Write the run's summary as JSON to FILE."),
        click.option("--quiet", is_flag=True, help="No live progress display at a terminal (NO_COLOR, TERM=dumb too)."),
        click.option("--resync", is_flag=True, help="pull: detections: pull every host this run (as full_resync: y)."),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def _epilog(*tables: str) -> str:
    """Click rewraps help text; ``\b`` keeps a paragraph as written."""
    return "\b\nPerl spellings:\n" + "\n".join(tables) + ("\n\n\b\nWithout -plugininfo the QualysGuard plugin "
                                                         "reads the first of:\n  input_plugins/QualysGuard.yaml\n"
                                                         "  ./QualysGuard.yaml\n  InputPlugins/QualysGuard.yaml")


@click.command(context_settings={"help_option_names": ["--help"]}, epilog=_epilog(OPTION_TABLE))
@_common
@click.argument("plugin", required=False, default="QualysGuard")
def qualys_connector_command(plugin, **kw):
    """Send a Qualys report template (or a host input CSV file) to a Firepower Management Center."""
    return _run_single(plugin, kw)


def _common_multi(f):
    return _common(f, multi=True)


@click.command(context_settings={"help_option_names": ["--help"]}, epilog=_epilog(MULTI_TABLE, MULTI_OPTION_TABLE))
@click.option("--multiinfo", required=True, metavar="ID,ID", help="Template IDs, comma separated.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Templates processed at once (capped by Qualys's concurrency limit).")
@_common_multi
@click.argument("plugin", required=False, default="QualysGuard")
def process_multiple_command(multiinfo, jobs, plugin, **kw):
    """Run the QualysGuard plugin once per report template ID."""
    from .multi import run_multiple
    if plugin.lower() != "qualysguard":
        raise click.UsageError(f"process-multiple runs the QualysGuard plugin only, not {plugin!r}")
    log = _start_logging(kw, "process-multiple")
    options = _options("QualysGuard", kw)
    return run_multiple(options, multiinfo, jobs, log, reporter=_reporter(kw, "process-multiple"),
                        display=liveprogress.choose(kw["quiet"]))


def _options(plugin: str, kw: dict) -> Options:
    runondc = kw.get("runondc", "n").strip().lower()
    if runondc in ("y", "yes"):
        raise click.UsageError("-runondc=y (importing on the FMC itself) is not supported; run from a separate host")
    if runondc not in ("n", "no"):      # a typo must not pass for n without a word
        raise click.UsageError(f"-runondc={kw['runondc']!r} is not y or n (only -runondc=n is supported)")
    server = check_server(kw["server"]) if kw["server"] else kw["server"]   # [fd00::10] as in URLs, too
    return Options(plugin=plugin, server=server, port=kw["port"], plugininfo=kw["plugininfo"],
                   ipv6=kw["ipv6"], pkcs12=kw["pkcs12"], password=_pkcs12_password(kw), csvfile=kw["csvfile"],
                   statedir=kw["statedir"], fmcca=kw["fmcca"], insecure=kw["insecure"],
                   resync=kw.get("resync", False))



def _pkcs12_password(kw: dict) -> str | None:
    """-password as typed, else QC_PKCS12_PASSWORD or QC_PKCS12_PASSWORD_FILE (click reads only the first)."""
    if kw["password"] and kw["password"] != os.environ.get("QC_PKCS12_PASSWORD"):
        return kw["password"]
    return read_secret("QC_PKCS12_PASSWORD")


def _start_logging(kw: dict, ident: str):
    log = configure(kw["level"], syslog=kw["syslog"], stderr=kw["stderr"], logfile=kw["logfile"], ident=ident)
    if kw.get("password") and kw["password"] != os.environ.get("QC_PKCS12_PASSWORD"):
        _hide_from_process_list(kw["password"])
        log.warning("a password on the command line is visible to other users in the process list "
                    "(masked now, but not during the first moments of the run); set QC_PKCS12_PASSWORD instead")
    return log


def _hide_from_process_list(secret: str) -> None:
    """Rewrite our command line as ``ps`` shows it, with the password masked."""
    try:
        import setproctitle
    except ImportError:     # pragma: no cover - a declared dependency
        return
    words = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    setproctitle.setproctitle(" ".join(w.replace(secret, "******") for w in words))


def _run_single(plugin: str, kw: dict) -> int:
    log = _start_logging(kw, "qualys-connector")
    options = _options(plugin, kw)
    summary = Summary()
    reporter = _reporter(kw, "qualys-connector")
    stop = threading.Event()
    display = liveprogress.choose(kw["quiet"])      # live rows at a person's terminal, else nothing
    try:
        reporter.check()
        plugin_module, config = prepare(options, log)
        with RunLock(lock_key(options, plugin_module), state_dir=options.statedir):
            with StopSignals(stop), display:
                row = display.row()
                run(options, plugin=plugin_module, config=config, log=log, stop=stop, summary=summary,
                    progress=row)
                row.done()
        return EXIT_OK
    except Exception as exc:   # a ConnectorError is its one line; a bug says so (traceback at -level=3)
        summary.outcome = outcome(exc)
        summary.exit_code = exit_code(exc)
        return fail(exc, log)
    finally:
        reporter.write([metrics.from_summary(summary, exit_code=summary.exit_code)], log)   # operations hook
        log_summary(log, summary.line())


def _reporter(kw: dict, command: str) -> metrics.Reporter:
    """Operations hook: -metrics / -summaryjson, written after every run whatever its result."""
    return metrics.Reporter(command, kw.get("metrics"), kw.get("summaryjson"))


def _main(command, prog: str, options: dict, argv: list[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        click.echo(version_screen(prog))
        return EXIT_OK
    def emit(line: str) -> None:
        click.echo(f"{prog}: {line}", err=True)

    try:
        normalized = perl_argv.normalize(args, options)
    except Exception as exc:
        return fail(exc, get_logger(), emit=emit)
    if "--version" in normalized:
        click.echo(f"{prog} Ver. {__version__}")
        return EXIT_OK
    try:
        result = command.main(args=normalized, prog_name=prog, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(str(exc))
        return exit_code(exc)
    except click.ClickException as exc:
        click.echo(f"{prog}: {exc.format_message()} (run {prog} --help for the options)", err=True)
        return EXIT_USAGE       # every option problem is a usage error, whatever click's class says
    except click.exceptions.Abort as exc:
        return exit_code(exc)
    except Exception as exc:  # a ConnectorError, or a bug: one line either way
        return fail(exc, get_logger(), emit=emit)
    return result if isinstance(result, int) else EXIT_OK


def qualys_connector_main(argv: list[str] | None = None) -> None:
    sys.exit(_main(qualys_connector_command, "qualys-connector", COMMON_OPTIONS, argv))


def process_multiple_main(argv: list[str] | None = None) -> None:
    sys.exit(_main(process_multiple_command, "process-multiple", MULTI_OPTIONS, argv))

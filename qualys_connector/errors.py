"""One flat exception tree; its branches follow what the person running the tool can do.

Every error carries a one-line ``message`` (what went wrong) and a ``hint`` (what to do
about it), and the exit code cron sees. Lower layers (ssl, socket, httpx, lxml, ruamel)
raise their own exceptions; they are translated into these at one boundary per layer, so
the CLI edge only ever has to print ``str(error)`` and exit with ``error.exit_code``.

Whose fault: ``LocalError`` subclasses are about this machine or its configuration
(fix the file, the option, the certificate); ``RemoteError`` subclasses are about the peer
(Qualys, the FMC, Censys) and may go away when retried later.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 1        # usage or configuration error: a person must change something
EXIT_FAILURE = 2      # run-time failure: Qualys, network, FMC refused commands
EXIT_LOCKED = 75      # EX_TEMPFAIL: another run holds the lock; try again later


class ConnectorError(Exception):
    """Base of every error the tools report to a user."""

    exit_code = EXIT_FAILURE
    default_hint = ""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ActionRequired(ConnectorError):
    """A person must change something (option, file, password, template): retrying alone will not help.

    The exit code follows the class, never the instance: every error whose cure is a person's
    action derives from this (as a mixin for the remote ones), so cron sees 1 for all of them.
    """

    exit_code = EXIT_USAGE


# ---------------------------------------------------------------- local: fix your side
class LocalError(ActionRequired):
    """Something on this machine or in its configuration is wrong."""


class UsageError(LocalError):
    """Wrong command line: unknown option, missing value, unknown plugin."""

    default_hint = "run with --help for the options"


class ConfigError(LocalError):
    """A configuration file is missing, malformed or has a bad value."""

    def __init__(self, message: str, hint: str | None = None, *, path: str | None = None,
                 key: str | None = None, line: int | None = None):
        where = ""
        if path:
            where = path
            if line is not None:
                where += f", line {line}"
            where += ": "
        if key:
            message = f"key '{key}': {message}"
        super().__init__(where + message, hint)
        self.path, self.key, self.line = path, key, line


class CertificateError(LocalError):
    """The PKCS#12 client certificate cannot be found, read or decrypted."""


class InputFileError(LocalError):
    """An input file (host input CSV, saved report) cannot be read or is not valid."""


class LineTooLong(LocalError):
    """A host input line is longer than the FMC's announced maximum message size."""

    default_hint = "split or shorten that line; nothing was sent"


class StateFileError(LocalError):
    """A state file (a delivery record) cannot be read, or was written by a newer version."""


class ClearingHeld(ConnectorError):
    """More hosts would have been cleared than ``max_clear`` allows: none were (exit 2)."""


class LockHeld(ConnectorError):
    """Another run holds the lock for the same configuration."""

    exit_code = EXIT_LOCKED
    default_hint = "this run did nothing; cron will try again at its next time"


class Interrupted(ConnectorError):
    """SIGTERM or SIGINT arrived; the run stopped cleanly."""


# ---------------------------------------------------------------- remote: the peer said no
class RemoteError(ConnectorError):
    """A peer (Qualys, FMC, Censys) failed or refused; often transient."""


class QualysError(RemoteError):
    """The Qualys API answered with an error (CODE and TEXT kept) or could not be reached."""

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None,
                 text: str | None = None, status: int | None = None):
        super().__init__(message, hint)
        self.code, self.text, self.status = code, text, status


class QualysAuthError(ActionRequired, QualysError):
    """Bad login or password, expired account, IP not allowed: a person must act."""


class QualysReportError(QualysError):
    """The report could not be produced: bad template, Errors/Canceled state, timeout."""


class QualysReportOver(QualysReportError):
    """Qualys ended the report itself (state Errors or Canceled) or lost it: nothing is left to cancel."""


class QualysTemplateError(ActionRequired, QualysReportError):
    """Qualys refused to launch the template (CODE 999): a person must fix template_id."""


class ReportFormatError(RemoteError):
    """The report XML is truncated, malformed or hostile; nothing of it was sent."""


class FMCError(RemoteError):
    """The FMC host input service could not be reached or broke the protocol."""


class FMCConnectError(FMCError):
    """Connection refused, name not resolved, or the TLS handshake was rejected."""


class FMCCertificateRejected(ActionRequired, FMCConnectError):
    """The FMC refused our client certificate at the TLS handshake: a person must act."""


class FMCCertificateUntrusted(ActionRequired, FMCConnectError):
    """The FMC's certificate did not verify against the CA we were given: a person must act."""
    default_hint = ("nothing was sent; give the FMC's CA with -fmcca=FILE, or renew the FMC's certificate "
                    "if it expired (-insecure skips the check, not recommended)")


class FMCProtocolError(FMCError):
    """The FMC closed the connection or sent something the protocol does not allow."""


class FMCRejected(FMCError):
    """The FMC processed the data but reported errors for some commands."""


class CensysError(RemoteError):
    """The Censys ASM API answered with an error or could not be reached."""

    def __init__(self, message: str, hint: str | None = None, *, error_code: int | None = None,
                 status: int | None = None):
        super().__init__(message, hint)
        self.error_code, self.status = error_code, status


class CensysAuthError(ActionRequired, CensysError):
    """The Censys ASM API key is missing or was refused."""


class DiskFull(LocalError):
    """A file could not be written: the file system is full, or a quota or file-size limit was hit."""

    default_hint = "free some space there (or point TMPDIR elsewhere) and run again; nothing half-written was kept"

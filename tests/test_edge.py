"""edge.py: exit codes follow error classes; one line per error; the one interruptible sleep; stop signals."""
import logging
import os
import signal
import threading

import pytest

from qualys_connector import edge, errors
from qualys_connector.edge import StopSignals, exit_code, fail, interruptible_sleep, outcome

EXPECTED = {
    errors.UsageError: 1, errors.ConfigError: 1, errors.CertificateError: 1, errors.InputFileError: 1,
    errors.LineTooLong: 1, errors.DiskFull: 1, errors.QualysAuthError: 1, errors.QualysTemplateError: 1,
    errors.FMCCertificateRejected: 1, errors.FMCCertificateUntrusted: 1, errors.CensysAuthError: 1, errors.ActionRequired: 1, errors.LocalError: 1,
    errors.StateFileError: 1, errors.ClearingHeld: 2,
    errors.LockHeld: 75,
    errors.Interrupted: 2, errors.RemoteError: 2, errors.QualysError: 2, errors.QualysReportError: 2,
    errors.QualysReportOver: 2, errors.ReportFormatError: 2, errors.FMCError: 2, errors.FMCConnectError: 2,
    errors.FMCProtocolError: 2, errors.FMCRejected: 2, errors.CensysError: 2, errors.ConnectorError: 2,
}


@pytest.mark.parametrize("cls,code", EXPECTED.items(), ids=lambda v: getattr(v, "__name__", str(v)))
def test_each_error_class_has_its_exit_code(cls, code):
    assert exit_code(cls("what went wrong", "what to do")) == code


def test_every_error_class_is_in_the_table():
    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)
    assert {c for c in all_subclasses(errors.ConnectorError) if c.__module__ == errors.__name__} <= set(EXPECTED)


def test_the_class_decides_not_an_attribute_set_on_one_error():
    error = errors.QualysError("x")
    error.exit_code = 1
    assert exit_code(error) == 2


def test_a_person_must_act_errors_share_one_base():
    for cls, code in EXPECTED.items():
        assert issubclass(cls, errors.ActionRequired) == (code == 1), cls


def test_a_bug_exits_2():
    assert exit_code(KeyError("x")) == 2


def test_fail_logs_one_line_and_returns_the_code(caplog):
    log = logging.getLogger("qualys_connector.test_edge")
    with caplog.at_level(logging.DEBUG, logger=log.name):
        assert fail(errors.ConfigError("bad key", "fix it"), log) == 1
        assert fail(RuntimeError("boom"), log, level_option="--level 3") == 2
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert lines == ["bad key (fix it)", "internal error (RuntimeError: boom); please report it with the "
                     "output of --level 3"]


def test_fail_can_emit_before_logging_is_set_up():
    said = []
    assert fail(errors.LockHeld("held"), emit=said.append) == 75
    assert said == ["held (this run did nothing; cron will try again at its next time)"]


def test_outcomes():
    assert [outcome(e) for e in (errors.Interrupted("x"), errors.LockHeld("x"), errors.QualysError("x"),
                                 ValueError())] == ["interrupted", "locked", "failed", "failed"]


def test_the_interruptible_sleep_ends_at_once_on_a_stop():
    stop = threading.Event()
    interruptible_sleep(stop, 0)          # no stop: returns
    interruptible_sleep(stop, -5)         # a negative wait is no wait
    stop.set()
    with pytest.raises(errors.Interrupted):
        interruptible_sleep(stop, 3600)
    with pytest.raises(errors.Interrupted):
        edge.sleeper(stop)(3600)


def test_sigterm_sets_the_event_and_raises_in_the_main_thread():
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(errors.Interrupted) as info:
        with StopSignals(stop):
            os.kill(os.getpid(), signal.SIGTERM)
    assert stop.is_set() and "stopped by SIGTERM" in str(info.value)
    assert signal.getsignal(signal.SIGTERM) == before, "the previous handler is back"


def test_without_raising_the_signal_only_sets_the_event():
    with StopSignals(raise_interrupted=False) as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.stop.wait(5)
    assert signals.name == "SIGINT"


def test_click_usage_errors_exit_1_and_aborts_2():
    import click
    assert exit_code(click.UsageError("no such option")) == 1
    assert exit_code(click.exceptions.Abort()) == 2

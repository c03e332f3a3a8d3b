"""Where -csvfile may write (README "Security"): a regular file is replaced atomically (a link's
target, not the link), a FIFO, a character device or - is written in order, anything else is
refused before Qualys is asked; nothing that is not a regular file is ever replaced."""
import os
import stat
import threading

import pytest

from conftest import run_cli
from qualys_connector import outpath
from qualys_connector.emulators.qualys.server import QualysEmulator, TemplateSpec
from qualys_connector.errors import Interrupted, UsageError

PASSWORD = "outpath-pw"
DATA = b'SetSource,Test\nAddHost,192.0.2.1\nAddScanResult,192.0.2.1,"Test",1,,,"t","d","cve_ids:","bugtraq_ids:"\nScanFlush\n'


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(DATA)
    return path


def csv_run(source, out, cwd):
    return run_cli(f"-pl={source}", f"-c={out}", "csv", cwd=cwd)


def leftovers(directory):
    return [p for p in os.listdir(directory) if p.startswith(".qc-")]


def read_fifo(path, into):
    with open(path, "rb") as fifo:
        into.append(fifo.read())


# ---------------------------------------------------------------- unit: classification
def test_kinds_of_output_paths(tmp_path):
    (tmp_path / "file.csv").write_text("old")
    os.symlink(tmp_path / "file.csv", tmp_path / "link.csv")
    os.mkfifo(tmp_path / "fifo")
    assert outpath.resolve(str(tmp_path / "new.csv")).kind == "file"
    assert outpath.resolve(str(tmp_path / "file.csv")).kind == "file"
    link = outpath.resolve(str(tmp_path / "link.csv"))
    assert (link.kind, link.path) == ("file", str(tmp_path / "file.csv"))   # the target, not the link
    assert outpath.resolve(str(tmp_path / "fifo")).kind == "stream"
    assert outpath.resolve("/dev/null").kind == "stream"
    assert outpath.resolve("-").kind == "stream"
    with pytest.raises(UsageError, match="is a directory"):
        outpath.resolve(str(tmp_path))
    with pytest.raises(UsageError, match="cannot create a file in /proc"):
        outpath.check_output_path("/proc/version", "-csvfile")


def test_a_socket_is_refused(tmp_path):
    import socket
    path = str(tmp_path / "sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        with pytest.raises(UsageError, match="is a socket"):
            outpath.check_output_path(path, "-csvfile")


def test_publish_refuses_a_path_that_stopped_being_a_file(tmp_path):
    spool = tmp_path / "spool"
    spool.write_bytes(DATA)
    os.mkdir(tmp_path / "became-a-dir")
    with pytest.raises(UsageError, match="is a directory"):
        outpath.publish(str(spool), str(tmp_path / "became-a-dir"))
    assert os.path.isdir(tmp_path / "became-a-dir")


# ---------------------------------------------------------------- end to end: the command
def test_a_regular_file_is_replaced_atomically_and_made_0600(tmp_path, source):
    out = tmp_path / "out.csv"
    out.write_text("old contents\n")
    out.chmod(0o644)
    result = csv_run(source, out, tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == DATA
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not leftovers(tmp_path)


def test_a_symlink_to_a_file_replaces_the_target_and_keeps_the_link(tmp_path, source):
    os.mkdir(tmp_path / "real")
    target = tmp_path / "real" / "target.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    os.symlink(target, link)
    result = csv_run(source, link, tmp_path)
    assert result.returncode == 0, result.stderr
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert target.read_bytes() == DATA
    assert not leftovers(tmp_path) and not leftovers(tmp_path / "real")   # the spool lived beside the target


def test_a_fifo_receives_exactly_the_lines_and_stays_a_fifo(tmp_path, source):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=read_fifo, args=(fifo, received), daemon=True)
    reader.start()
    result = csv_run(source, fifo, tmp_path)
    reader.join(30)
    assert result.returncode == 0, result.stderr
    assert received == [DATA]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert not leftovers(tmp_path)


def test_dev_null_stays_a_character_device(tmp_path, source):
    before = os.lstat("/dev/null")
    assert stat.S_ISCHR(before.st_mode)
    result = csv_run(source, "/dev/null", tmp_path)
    after = os.lstat("/dev/null")
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)


def test_a_character_device_node_is_written_not_replaced(tmp_path, source):
    node = tmp_path / "null-copy"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.stat("/dev/null").st_rdev)
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    result = csv_run(source, node, tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert not leftovers(tmp_path)


def test_dash_writes_the_lines_to_stdout_and_logs_only_to_stderr(tmp_path, source):
    result = run_cli(f"-pl={source}", "-c=-", "-stderr", "-level=3", "csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DATA.decode()
    assert "Summary: " in result.stderr
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("out,needle", [("/proc/version", "cannot create a file in /proc"),
                                        ("DIR", "is a directory")])
def test_refused_outputs_are_one_line_exit_1_before_qualys_is_asked(tmp_path, lock_dir, out, needle):
    out = str(tmp_path) if out == "DIR" else out
    config = tmp_path / "QualysGuard.yaml"
    with QualysEmulator(users={"u": PASSWORD}, templates={"1": TemplateSpec(hosts=3, seed=1)}) as q:
        config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {q.url}\npoll_interval: 0.05\n")
        config.chmod(0o600)
        before = os.stat("/proc/version") if out == "/proc/version" else None
        result = run_cli(f"-pl={config}", f"-c={out}", env={"QC_QUALYS_PASSWORD": PASSWORD}, cwd=tmp_path)
        requests = list(q.state.request_log)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "[ERROR]" in line]
    assert len(errors) == 1 and needle in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert requests == []
    if before:
        assert stat.S_ISREG(os.stat("/proc/version").st_mode)


def test_process_multiple_writes_every_template_to_one_stream(tmp_path, lock_dir):
    config = tmp_path / "QualysGuard.yaml"
    specs = {"11": TemplateSpec(hosts=3, vulns_per_host=1, seed=1, network="10.11.0.0/16"),
             "22": TemplateSpec(hosts=4, vulns_per_host=1, seed=2, network="10.22.0.0/16")}
    with QualysEmulator(users={"u": PASSWORD}, templates=specs) as q:
        config.write_text(f"user_id: u\ntemplate_id: 1\nurl: {q.url}\npoll_interval: 0.05\n")
        config.chmod(0o600)
        result = run_cli("-m=11,22", "-c=-", f"-pl={config}", program="process-multiple",
                         env={"QC_QUALYS_PASSWORD": PASSWORD}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("SetSource,QualysGuard\n") == 2
    assert "10.11." in result.stdout and "10.22." in result.stdout
    assert not [p for p in os.listdir(tmp_path) if p.endswith("_-")]


def test_new_output_and_spool_are_0600_under_umask_022(tmp_path, source):
    old = os.umask(0o022)
    try:
        fd, spool = outpath.make_spool(str(tmp_path / "out.csv"))
        os.close(fd)
        assert stat.S_IMODE(os.stat(spool).st_mode) == 0o600
        os.unlink(spool)
        result = run_cli(f"-pl={source}", f"-c={tmp_path / 'new.csv'}", "csv", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o600


def test_a_fifo_nobody_reads_is_waited_for_until_stopped(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    spool = tmp_path / "spool"
    spool.write_bytes(DATA)
    stop = threading.Event()
    stop.set()                                  # SIGTERM came while no reader was there
    with pytest.raises(Interrupted, match="waiting for a reader"):
        outpath.publish(str(spool), str(tmp_path / "fifo"), stop=stop)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)

"""The emulator commands turn bad arguments into one "Error:" line and a non-zero exit, never a traceback."""
import os
import shutil
import socket
import sqlite3
import subprocess
import sys

import pytest


def run(emulator, *args, timeout=60):
    """Run ``fmc-emulator``/``qualys-emulator``/``censys-emulator`` in a child process, as a user would."""
    env = dict(os.environ, CENSYS_EMULATOR_API_KEY="test-key", QUALYS_EMULATOR_PASSWORD="test-password")
    return subprocess.run([sys.executable, "-m", f"qualys_connector.emulators.{emulator}.cli", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def error_line(result):
    """The one ``Error:`` line; besides it stderr holds at most click's usage hint and the emulator's log."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert [line for line in lines if line not in errors
            and not line.startswith(("Usage: ", "Try ")) and "[INFO]" not in line] == [], result.stderr
    return errors[0]


def pki_dir(pki):
    return os.path.dirname(pki.ca_cert)


def serve_args(pki, *more):
    return ("serve", "--pki", pki_dir(pki), "--port", "0", *more)


# ---------------------------------------------------------------------- ports
@pytest.mark.parametrize("emulator, args", [("censys", ()), ("qualys", ()), ("fmc", None)])
def test_a_port_in_use_is_one_line_for_each_emulator(emulator, args, pki):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        argv = ("serve", "--pki", pki_dir(pki), "--port", port) if args is None else ("--port", port)
        line = error_line(run(emulator, *argv))
    assert line == f"Error: cannot listen on 127.0.0.1 port {port}: Address already in use"


@pytest.mark.parametrize("emulator", ["censys", "qualys", "fmc"])
def test_a_port_file_in_a_missing_directory_is_one_line(emulator, pki, tmp_path):
    port_file = tmp_path / "no-such-dir" / "port"
    argv = ["--port", "0", "--port-file", str(port_file)]
    line = error_line(run(emulator, *(serve_args(pki) if emulator == "fmc" else ()), *argv))
    assert line == (f"Error: cannot write the port to {port_file}: No such file or directory; "
                    "give --port-file a path in an existing, writable directory")


# ---------------------------------------------------------------------- fmc-emulator --db
def _text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n")
    return str(path)


def _other_sqlite(tmp_path):
    path = str(tmp_path / "other.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE hosts (name TEXT)")
    conn.close()
    return path


@pytest.mark.parametrize("command", ["export", "serve"])
@pytest.mark.parametrize("make_db, expected", [
    (_text_file, "{db} is not an SQLite database: use the file fmc-emulator serve --db wrote, "
                 "or a new name for serve to create"),
    (lambda tmp_path: str(tmp_path), "{db} is a directory: give a file name for the network map, "
                                     "e.g. {db}/map.sqlite"),
    (_other_sqlite, "{db} is an SQLite database but not a network map (no such column: ip): "
                    "use the file fmc-emulator serve --db wrote, or a new name for serve to create"),
], ids=["text-file", "directory", "other-sqlite"])
def test_fmc_db_that_is_not_a_network_map_is_one_line(command, make_db, expected, pki, tmp_path):
    db = make_db(tmp_path)
    argv = ("export", "--db", db) if command == "export" else serve_args(pki, "--db", db)
    assert error_line(run("fmc", *argv)) == "Error: " + expected.format(db=db)
    if make_db is _text_file:
        assert open(db).read() == "not a database\n"


def test_fmc_serve_db_in_a_missing_directory_is_one_line(pki, tmp_path):
    db = tmp_path / "no-such-dir" / "map.sqlite"
    assert error_line(run("fmc", *serve_args(pki, "--db", str(db)))) == (
        f"Error: cannot create {db}: the directory {db.parent} does not exist; create it or choose another path")


def test_fmc_export_of_a_missing_db_is_an_error_and_creates_nothing(tmp_path):
    db = tmp_path / "map.sqlite"
    assert error_line(run("fmc", "export", "--db", str(db))) == (
        f"Error: {db} does not exist: give the file that serve --db wrote (export never creates one)")
    assert not db.exists()


# ---------------------------------------------------------------------- fmc-emulator PKI
@pytest.mark.parametrize("name, damage, expected", [
    ("ca.pem", "garbage", "{d}/ca.pem is not a PEM CA certificate"),
    ("ca.pem", "directory", "{d}/ca.pem is not a PEM CA certificate"),
    ("server.pem", "garbage", "{d}/server.pem and {d}/server.key are not a PEM certificate and its key"),
    ("server.key", "garbage", "{d}/server.pem and {d}/server.key are not a PEM certificate and its key"),
])
def test_fmc_serve_with_a_damaged_pki_is_one_line(name, damage, expected, pki, tmp_path):
    directory = str(tmp_path / "pki")
    shutil.copytree(pki_dir(pki), directory)
    os.remove(os.path.join(directory, name))
    if damage == "directory":
        os.mkdir(os.path.join(directory, name))
    else:
        with open(os.path.join(directory, name), "w") as fh:
            fh.write("-----BEGIN NOTHING-----\n")
    line = error_line(run("fmc", "serve", "--pki", directory, "--port", "0"))
    assert line == ("Error: " + expected.format(d=directory)
                    + f": run fmc-emulator init-pki {directory} to mint a new PKI (and a new client.pkcs12)")


def test_fmc_serve_with_a_pki_dir_that_does_not_exist_is_one_line(tmp_path):
    directory = tmp_path / "no-pki"
    assert error_line(run("fmc", "serve", "--pki", str(directory))) == (
        f"Error: {directory}/ca.pem is missing: run fmc-emulator init-pki {directory} first")


def test_fmc_init_pki_into_a_file_is_one_line(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("")
    assert error_line(run("fmc", "init-pki", str(path))) == (
        f"Error: cannot write the PKI into {path}: a file of that name exists; "
        "give a directory that can be created and written to")


# ---------------------------------------------------------------------- censys-emulator --events
@pytest.mark.parametrize("content, expected", [
    ("not json", "{f}: Expecting value: line 1 column 1 (char 0)"),
    ('{"id": 1}', "{f} must hold a JSON list of events"),
    ('[{"id": 1}, 7]', "{f}: event 2 is 7, not a JSON object"),
    ('[{"id": "x"}]', '{f}: event 1 has id "x": ids are integers'),
    ('[{"timestamp": "yesterday"}]',
     '{f}: event 1 has timestamp "yesterday": expected ISO-8601, e.g. 2026-01-01T00:00:00.000Z'),
], ids=["not-json", "not-a-list", "not-an-object", "string-id", "bad-timestamp"])
def test_censys_bad_events_file_is_one_line(content, expected, tmp_path):
    events = tmp_path / "events.json"
    events.write_text(content)
    line = error_line(run("censys", "--port", "0", "--events", str(events)))
    assert line == "Error: Invalid value for --events: " + expected.format(f=events)


def test_censys_missing_events_file_is_one_line(tmp_path):
    events = tmp_path / "events.json"
    assert error_line(run("censys", "--port", "0", "--events", str(events))) == (
        f"Error: Invalid value for --events: {events}: [Errno 2] No such file or directory: '{events}'")


@pytest.mark.parametrize("option, value, expected", [
    ("--page-size", "0", "Error: Invalid value for '--page-size': 0 is not in the range x>=1."),
    ("--generate", "-5", "Error: Invalid value for '--generate': -5 is not in the range x>=0."),
])
def test_censys_page_size_and_generate_out_of_range_are_one_line(option, value, expected):
    assert error_line(run("censys", "--port", "0", option, value)) == expected


# ---------------------------------------------------------------------- qualys-emulator
def test_qualys_template_that_is_a_directory_is_one_line(tmp_path):
    line = error_line(run("qualys", "--port", "0", "--template", f"1={tmp_path}"))
    assert line == (f"Error: Invalid value for --template: cannot read {tmp_path}: Is a directory; "
                    "give an XML report file")


def test_qualys_template_that_does_not_exist_is_one_line(tmp_path):
    path = tmp_path / "report.xml"
    line = error_line(run("qualys", "--port", "0", "--template", f"1={path}"))
    assert line == (f"Error: Invalid value for --template: cannot read {path}: No such file or directory; "
                    "give an XML report file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_qualys_unreadable_template_is_one_line(tmp_path):
    path = tmp_path / "report.xml"
    path.write_text("<xml/>")
    path.chmod(0)
    line = error_line(run("qualys", "--port", "0", "--template", f"1={path}"))
    assert line == (f"Error: Invalid value for --template: cannot read {path}: Permission denied; "
                    "give an XML report file")


def test_qualys_tls_dir_that_is_a_file_is_one_line_not_a_listen_error(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("")
    assert error_line(run("qualys", "--port", "0", "--tls", str(path))) == (
        f"Error: cannot write the TLS certificate into {path}: a file of that name exists; "
        "give --tls a directory that can be created and written to")

"""deliveryrecord: what a job delivered last time, per target; replaced atomically, refused when unusable."""
import os
import sqlite3

import pytest

from qualys_connector import deliveryrecord
from qualys_connector.deliveryrecord import DeliveryRecord, MaxClear, Target
from qualys_connector.errors import StateFileError

T = Target("fmc.example", 8307, None, "QualysGuard", "QualysGuard", "424242")


def delivered(state, hosts, target=T, watermark=None):
    with DeliveryRecord.open(state, target) as record:
        for ip in hosts:
            record.add_current(ip)
        record.commit(watermark=watermark)


def test_a_first_run_has_no_previous_hosts_and_a_commit_makes_the_record(tmp_path):
    with DeliveryRecord.open(tmp_path, T) as record:
        assert not record.exists and record.previous_count == 0 and record.watermark is None
        record.add_current("10.0.0.1")
        record.add_current("10.0.0.1")
        record.add_current("10.0.0.2")
        assert record.current_count == 2 and list(record.missing()) == []
        record.commit(watermark="2026-01-01T00:00:00Z")
    with DeliveryRecord.open(tmp_path, T) as again:
        assert again.exists and again.previous_count == 2 and again.watermark == "2026-01-01T00:00:00Z"
        assert list(again.previous_hosts()) == ["10.0.0.1", "10.0.0.2"]


def test_missing_and_to_clear(tmp_path):
    delivered(tmp_path, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    with DeliveryRecord.open(tmp_path, T) as record:
        record.add_current("10.0.0.1")
        record.add_absent("10.0.0.2")           # listed without findings
        record.add_absent("10.0.0.9")           # never delivered, listed without findings
        record.add_absent("10.0.0.1")           # a second HOST of the same address had findings
        assert list(record.missing()) == ["10.0.0.2", "10.0.0.3"]
        assert list(record.to_clear(include_missing=True)) == ["10.0.0.2", "10.0.0.3", "10.0.0.9"]
        assert list(record.to_clear(include_missing=False)) == ["10.0.0.2", "10.0.0.9"]
        assert record.count_to_clear(include_missing=True, previous_only=True) == 2
        assert record.count_to_clear(include_missing=False, previous_only=False) == 2
        assert record.is_current("10.0.0.1") and not record.is_current("10.0.0.2")


def test_keep_missing_keeps_the_previous_hosts_in_the_new_record(tmp_path):
    delivered(tmp_path, ["10.0.0.1", "10.0.0.2"])
    with DeliveryRecord.open(tmp_path, T) as record:
        record.add_current("10.0.0.3")
        record.commit(keep_missing=True)
    with DeliveryRecord.open(tmp_path, T) as record:
        assert list(record.previous_hosts()) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


def test_without_commit_the_previous_record_stays_byte_for_byte_and_no_scratch_is_left(tmp_path):
    delivered(tmp_path, ["10.0.0.1"])
    (path,) = tmp_path.iterdir()
    before = path.read_bytes()
    with DeliveryRecord.open(tmp_path, T) as record:
        record.add_current("10.0.0.2")
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
    with pytest.raises(RuntimeError):
        with DeliveryRecord.open(tmp_path, T) as record:
            record.add_current("10.0.0.3")
            raise RuntimeError("the run failed")
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_the_commit_is_a_rename_of_a_complete_file(tmp_path, monkeypatch):
    delivered(tmp_path, ["10.0.0.1"])
    (path,) = tmp_path.iterdir()
    before = path.read_bytes()
    renames = []
    real = os.replace

    def replace(src, dst):
        renames.append((os.path.dirname(src), dst))
        assert sqlite3.connect(src).execute("SELECT count(*) FROM hosts").fetchone() == (1,)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(deliveryrecord.os, "replace", replace)
    with DeliveryRecord.open(tmp_path, T) as record:
        record.add_current("10.0.0.2")
        with pytest.raises(StateFileError, match="cannot write the delivery record"):
            record.commit()
    monkeypatch.setattr(deliveryrecord.os, "replace", real)
    assert renames == [(str(tmp_path), path)] and path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_the_record_file_is_private(tmp_path):
    delivered(tmp_path, ["10.0.0.1"])
    (path,) = tmp_path.iterdir()
    assert path.stat().st_mode & 0o077 == 0


def test_each_target_and_job_has_its_own_record(tmp_path):
    other = Target("fmc.example", 8307, None, "QualysGuard", "QualysGuard", "535353")
    delivered(tmp_path, ["10.0.0.1"])
    delivered(tmp_path, ["10.0.0.2"], target=other)
    assert len(list(tmp_path.iterdir())) == 2
    with DeliveryRecord.open(tmp_path, other) as record:
        assert list(record.previous_hosts()) == ["10.0.0.2"]
    assert T.group() == other.group() and T.filename() != other.filename()
    assert Target("FMC.example", 8307, None, "QualysGuard", "QualysGuard", "424242").key() == T.key()


def test_previous_false_ignores_an_existing_record(tmp_path):
    delivered(tmp_path, ["10.0.0.1"])
    with DeliveryRecord.open(tmp_path, T, previous=False) as record:
        assert not record.exists and list(record.missing()) == []


def test_a_record_from_a_newer_version_is_refused_naming_the_file(tmp_path):
    delivered(tmp_path, ["10.0.0.1"])
    (path,) = tmp_path.iterdir()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'version'", (str(deliveryrecord.VERSION + 1),))
    with pytest.raises(StateFileError) as info:
        DeliveryRecord.open(tmp_path, T)
    assert str(path) in str(info.value) and "newer version" in str(info.value)
    assert info.value.exit_code == 1


@pytest.mark.parametrize("content", [b"", b"not a database at all", b"SQLite format 3\x00" + b"\x00" * 200])
def test_an_unreadable_record_is_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / T.filename()
    path.write_bytes(content)
    with pytest.raises(StateFileError) as info:
        DeliveryRecord.open(tmp_path, T)
    assert str(path) in str(info.value) and info.value.exit_code == 1
    assert list(tmp_path.iterdir()) == [path]       # no scratch file left behind


def test_a_record_that_cannot_be_read_for_permissions_is_an_error(tmp_path):
    delivered(tmp_path, ["10.0.0.1"])
    (path,) = tmp_path.iterdir()
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root")
        with pytest.raises(StateFileError, match="cannot read the delivery record"):
            DeliveryRecord.open(tmp_path, T)
    finally:
        path.chmod(0o600)


def test_a_record_of_another_target_under_this_name_is_refused(tmp_path):
    other = Target("other", 8307, None, "QualysGuard", "QualysGuard", "1")
    delivered(tmp_path, ["10.0.0.1"], target=other)
    os.rename(tmp_path / other.filename(), tmp_path / T.filename())
    with pytest.raises(StateFileError, match="another target"):
        DeliveryRecord.open(tmp_path, T)


def test_many_hosts_go_through_sqlite_not_memory(tmp_path):
    with DeliveryRecord.open(tmp_path, T) as record:
        for n in range(20000):
            record.add_current(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
        record.commit()
    with DeliveryRecord.open(tmp_path, T) as record:
        for n in range(0, 20000, 2):
            record.add_current(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
        assert record.count_to_clear(include_missing=True, previous_only=True) == 10000


@pytest.mark.parametrize("text,clears,base,ok", [
    ("50%", 5, 10, True), ("50%", 6, 10, False), ("100%", 10, 10, True), ("0%", 1, 10, False),
    ("12.5%", 1, 8, True), ("1000", 1000, 1, True), ("1000", 1001, 10**6, False), (0, 1, 5, False)])
def test_max_clear(text, clears, base, ok):
    assert MaxClear.parse(text).allows(clears, base) is ok


@pytest.mark.parametrize("text", ["150%", "-1", "half", "5.5", "%"])
def test_max_clear_refuses_nonsense(text):
    with pytest.raises(ValueError, match="percentage"):
        MaxClear.parse(text)

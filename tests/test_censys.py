"""censys-qualys end to end: Censys ASM emulator → censys-qualys → Qualys emulator (README "censys-qualys")."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import pytest

from qualys_connector.censys.api import CensysClient
from qualys_connector.censys.decide import decide as decide_events
from qualys_connector.censys.events import LogbookEvent
from qualys_connector.censys.position import Position
from qualys_connector.censys.sync import run_cycle
from qualys_connector.censys import settings as settings_module
from qualys_connector.emulators.censys.server import CensysEmulator
from qualys_connector.emulators.qualys.server import QualysEmulator
from qualys_connector.errors import QualysError
from qualys_connector.qualys.api import QualysClient

KEY, QPW = "censys-key-123", "qualys-pw-456"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def host(ip, op, **extra):
    return {"type": "HOST", "operation": op, "entity": {"ipAddress": ip}, **extra}


def write_settings(tmp_path, censys_url, qualys_url, **run):
    options = {"interval": 120, "startup": "true", "idFrom": "", "trialMode": "false", "addHosts": "true",
               "excludeHosts": "true"}
    options.update(run)
    text = textwrap.dedent(f"""\
        authentication:
          asm_api_key: {KEY}
          asm_api_url: {censys_url}
        run:
        """) + "".join(f"  {k}: {v}\n" for k, v in options.items()) + textwrap.dedent(f"""\
        qualys:
          qualys_api_url: {qualys_url}
          qualys_username: u
          qualys_password: {QPW}
        """)
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def once(settings, *more, env=None):
    full = dict(os.environ, QC_LOCK_DIR=os.path.dirname(settings))
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "qualys_connector.censys.cli", "once", "--settings", settings, *more],
                          capture_output=True, text=True, timeout=120, env=full)


@pytest.fixture
def emulators():
    with CensysEmulator(api_key=KEY, page_size=3) as censys, QualysEmulator(users={"u": QPW}) as qualys:
        yield censys, qualys


# ---------------------------------------------------------------- the decision, pure
def decide(raw_events, **kw):
    """The decision on raw logbook JSON, parsed once as the client does."""
    return decide_events([LogbookEvent.parse(e) for e in raw_events], **kw)


def ips(mapping):
    return {str(ip): value for ip, value in mapping.items()}


def test_the_latest_host_event_per_ip_decides():
    events = [dict(host("10.0.0.1", "ASSOCIATE"), id=1), dict(host("10.0.0.2", "ASSOCIATE"), id=2),
              dict(host("10.0.0.1", "DISASSOCIATE"), id=3), dict(host("10.0.0.3", "DISASSOCIATE"), id=4),
              dict(host("10.0.0.3", "ASSOCIATE"), id=5),
              {"id": 6, "type": "HOST_PORT", "operation": "ADD", "entity": {"ipAddress": "10.0.0.9"}}]
    d = decide(events, add_hosts=True, exclude_hosts=True)
    assert ips(d.add) == {"10.0.0.2": 2, "10.0.0.3": 5} and ips(d.exclude) == {"10.0.0.1": 3} and d.last_id == 6
    assert decide(events, add_hosts=False, exclude_hosts=True).add == {}
    assert decide(events, add_hosts=True, exclude_hosts=False).exclude == {}


def test_trial_budget_cuts_the_batch_before_the_ip_over_the_limit():
    events = [dict(host(f"10.0.0.{i}", "ASSOCIATE"), id=i) for i in range(1, 30)]
    d = decide(events, add_budget=20)
    assert list(map(str, d.add)) == [f"10.0.0.{i}" for i in range(1, 21)] and d.last_id == 20 and d.cut


def test_ipv6_addresses_are_set_apart_and_do_not_use_the_trial_budget():
    events = [dict(host("2001:db8::1", "ASSOCIATE"), id=1), dict(host("10.0.0.1", "ASSOCIATE"), id=2),
              dict(host("2001:db8::2", "DISASSOCIATE"), id=3), dict(host("10.0.0.2", "ASSOCIATE"), id=4)]
    d = decide(events, add_hosts=True, exclude_hosts=True, add_budget=2)
    assert ips(d.add) == {"10.0.0.1": 2, "10.0.0.2": 4} and d.exclude == {} and not d.cut
    assert ips(d.ipv6) == {"2001:db8::1": "ASSOCIATE", "2001:db8::2": "DISASSOCIATE"}
    assert decide(events, add_hosts=False, exclude_hosts=False).ipv6 == {}


def test_the_censys_emulator_starts_a_date_cursor_at_the_first_event_of_that_time():
    import httpx
    with CensysEmulator(api_key=KEY, page_size=10) as censys:
        censys.append([host("10.1.0.1", "ASSOCIATE", timestamp="2026-03-01T10:00:00.000Z"),
                       host("10.1.0.2", "ASSOCIATE", timestamp="2026-03-02T10:00:00.000Z")])
        cursor = httpx.post(f"{censys.url}/v1/logbook-cursor", headers={"Censys-Api-Key": KEY},
                            json={"dateFrom": "2026-03-02T00:00:00Z"}).json()["cursor"]
        page = httpx.get(f"{censys.url}/v1/logbook", params={"cursor": cursor}, headers={"Censys-Api-Key": KEY}).json()
        assert [e["entity"]["ipAddress"] for e in page["events"]] == ["10.1.0.2"] and page["endOfEvents"]
        missing = httpx.get(f"{censys.url}/v1/logbook")
        assert missing.status_code == 401 and missing.json()["errorCode"] == 10000


# ---------------------------------------------------------------- end to end, through the command
def test_associate_disassociate_reassociate_end_in_the_right_qualys_state(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host("203.0.113.1", "ASSOCIATE"), host("203.0.113.2", "ASSOCIATE"),
                   host("203.0.113.3", "ASSOCIATE"), host("2001:db8::7", "ASSOCIATE")])
    settings = write_settings(tmp_path, censys.url, qualys.url)
    result = once(settings)
    assert result.returncode == 0, result.stderr
    assert qualys.state.asset_ips == {"203.0.113.1", "203.0.113.2", "203.0.113.3"}
    assert "2001:db8::7 was associated in Censys ASM but is IPv6" in result.stderr
    assert "add it in Qualys by hand" in result.stderr
    censys.append([host("203.0.113.2", "DISASSOCIATE"), host("2001:db8::7", "DISASSOCIATE")])
    result = once(settings)
    assert result.returncode == 0, result.stderr
    assert qualys.state.excluded_ips == {"203.0.113.2"}
    assert "2001:db8::7 was disassociated in Censys ASM but is IPv6" in result.stderr
    ipv6_line = next(line for line in result.stderr.splitlines() if "2001:db8::7 was disassociated" in line)
    assert "exclude it in Qualys by hand if needed" in ipv6_line and "add it" not in ipv6_line
    assert "ipv6_skipped=1" in result.stderr
    censys.append([host("203.0.113.2", "ASSOCIATE")])
    assert once(settings).returncode == 0
    assert qualys.state.excluded_ips == set()
    assert json.load(open(tmp_path / "censys-qualys.position.json")) == {"next_id": 8}
    comments = [p.get("comment") for _, a, p in qualys.state.request_log if a == "add" and "comment" in p]
    assert any("censys-qualys" in c and "logbook events 5-5" in c for c in comments)
    assert censys.cursor_requests[-1] == {"idFrom": 7, "filter": {"type": ["HOST"]}}


def test_many_ipv6_hosts_are_named_up_to_a_limit_then_counted(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host(f"2001:db8::{i:x}", "ASSOCIATE") for i in range(1, 31)] + [host("203.0.113.5", "ASSOCIATE")])
    result = once(write_settings(tmp_path, censys.url, qualys.url))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("but is IPv6") == 20
    assert "30 IPv6 addresses in all were not sent to Qualys this cycle" in result.stderr
    assert qualys.state.asset_ips == {"203.0.113.5"} and "ipv6_skipped=30" in result.stderr


def test_exclusions_can_expire(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host("203.0.113.9", "DISASSOCIATE")])
    assert once(write_settings(tmp_path, censys.url, qualys.url, excludeExpiryDays=30)).returncode == 0
    assert qualys.state.excluded_ips == {"203.0.113.9"}
    sent = [p for path, a, p in qualys.state.request_log if a == "add" and "excluded_ip" in path]
    assert sent[0]["expiry_days"] == "30"


def test_the_excluded_list_is_read_once_per_cycle_and_kept_up_to_date_locally(tmp_path, emulators):
    censys, qualys = emulators
    qualys.state.excluded_ips.add("203.0.113.40")            # excluded by hand before the first run
    # batch 1 adds (needs the list), batch 2 excludes .41, batch 3 re-associates .41 and .40
    censys.append([host("203.0.113.50", "ASSOCIATE"), host("203.0.113.51", "ASSOCIATE"),
                   host("203.0.113.41", "DISASSOCIATE"), host("203.0.113.52", "DISASSOCIATE"),
                   host("203.0.113.41", "ASSOCIATE"), host("203.0.113.40", "ASSOCIATE")])
    result = once(write_settings(tmp_path, censys.url, qualys.url, batchSize=2))
    assert result.returncode == 0, result.stderr
    lists = [1 for path, action, _ in qualys.state.request_log if "excluded_ip" in path and action == "list"]
    assert len(lists) == 1, "one download per cycle, not one per batch that changed the list"
    assert qualys.state.excluded_ips == {"203.0.113.52"}
    assert {"203.0.113.40", "203.0.113.41", "203.0.113.50", "203.0.113.51"} <= qualys.state.asset_ips
    assert "unexcluded=2" in result.stderr


def test_an_empty_excluded_list_excludes_nothing(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host("203.0.113.60", "ASSOCIATE")])
    result = once(write_settings(tmp_path, censys.url, qualys.url))
    assert result.returncode == 0, result.stderr
    removes = [1 for path, action, _ in qualys.state.request_log if "excluded_ip" in path and action == "remove"]
    assert removes == [] and "unexcluded=0" in result.stderr and qualys.state.asset_ips == {"203.0.113.60"}


def test_a_qualys_failure_keeps_the_position_before_the_failed_batch(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host(f"192.0.2.{i}", "ASSOCIATE") for i in range(1, 13)])
    settings = write_settings(tmp_path, censys.url, qualys.url, batchSize=4, excludeHosts="false")
    s = settings_module.load(settings)
    position = Position(str(tmp_path))
    calls = {"n": 0}
    with CensysClient(KEY, censys.url) as c, QualysClient(qualys.url, "u", QPW, sleep=lambda s: None) as q:
        real = q.add_ips

        def flaky(ips, **kw):
            calls["n"] += 1
            if calls["n"] == 2:
                qualys.inject("401")
            return real(ips, **kw)
        q.add_ips = flaky
        with pytest.raises(QualysError):
            run_cycle(s, c, q, position)
    assert position.load() == 5                      # batch 1 (ids 1-4) accepted, batch 2 not
    assert qualys.state.asset_ips == {f"192.0.2.{i}" for i in range(1, 5)}
    result = once(settings)
    assert result.returncode == 0, result.stderr
    assert qualys.state.asset_ips == {f"192.0.2.{i}" for i in range(1, 13)}
    assert position.load() == 13


def test_trial_mode_adds_20_per_run_and_the_rest_later(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host(f"198.51.100.{i}", "ASSOCIATE") for i in range(1, 31)])
    settings = write_settings(tmp_path, censys.url, qualys.url, trialMode="true")
    result = once(settings)
    assert result.returncode == 0 and len(qualys.state.asset_ips) == 20
    assert "trialMode" in result.stderr
    assert once(settings).returncode == 0 and len(qualys.state.asset_ips) == 30


def test_add_hosts_false_really_adds_nothing(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host("198.51.100.1", "ASSOCIATE")])
    result = once(write_settings(tmp_path, censys.url, qualys.url, addHosts="false"))
    assert result.returncode == 0 and qualys.state.asset_ips == set()


def test_rate_limit_retry_after_is_honoured(emulators):
    censys, _ = emulators
    censys.append([host("198.51.100.1", "ASSOCIATE")])
    waits = []
    censys.inject("429")
    with CensysClient(KEY, censys.url, sleep=waits.append) as c:
        page = c.page(c.cursor(0, ["HOST"]))
    assert waits == [1.0] and str(page.events[0].ip) == "198.51.100.1"


def test_an_invalid_api_key_is_exit_1_with_a_clear_message(tmp_path, emulators):
    censys, qualys = emulators
    result = once(write_settings(tmp_path, censys.url, qualys.url), env={"CENSYS_ASM_API_KEY": "wrong-key"})
    assert result.returncode == 1
    assert "Censys refused the API key" in result.stderr and "wrong-key" not in result.stderr


def test_a_long_logbook_is_read_with_flat_memory(tmp_path):
    with CensysEmulator(api_key=KEY, generate=100_000, page_size=1000) as censys, \
            QualysEmulator(users={"u": QPW}) as qualys:
        s = settings_module.load(write_settings(tmp_path, censys.url, qualys.url, batchSize=2000))
        with CensysClient(KEY, censys.url) as c, QualysClient(qualys.url, "u", QPW) as q:
            tracemalloc.start()
            result = run_cycle(s, c, q, Position(str(tmp_path)))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert result.next_id == 100_001 and result.batches >= 40
    assert peak < 30_000_000         # one page and one batch, not 100,000 events


def test_malformed_settings_name_the_key_and_line(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("authentication:\n  asm_api_key: k\nrun:\n  interval: often\nqualys:\n  qualys_api_url: https://q\n"
                    "  qualys_username: u\n  qualys_password: p\n")
    result = once(str(path))
    assert result.returncode == 1 and "line 4" in result.stderr and "interval" in result.stderr
    path.write_text("authentication:\n  asm_api_key: k\n  api_key: x\n")
    result = once(str(path))
    assert result.returncode == 1 and "unknown key 'api_key'" in result.stderr and "line 3" in result.stderr
    assert once(str(tmp_path / "missing.yaml")).returncode == 1


def test_a_second_run_exits_75(tmp_path, emulators):
    from qualys_connector.locking import RunLock
    censys, qualys = emulators
    settings = write_settings(tmp_path, censys.url, qualys.url)
    with RunLock("x", str(tmp_path / "censys-qualys.lock")):
        result = once(settings)
    assert result.returncode == 75


def test_a_state_directory_it_cannot_write_is_a_configuration_error(tmp_path, emulators):
    censys, qualys = emulators
    settings = write_settings(tmp_path, censys.url, qualys.url)
    state = tmp_path / "not-a-dir"
    state.write_text("a file where the state directory should be")
    result = once(settings, "--state-dir", str(state / "sub"))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_the_example_settings_file_is_valid(tmp_path):
    settings = settings_module.load(os.path.join(REPO, "settings_example.yaml"))
    assert settings.interval == 120 and settings.add_hosts and not settings.exclude_hosts


def test_usage_errors_exit_1_with_the_usage(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "qualys_connector.censys.cli", *args], capture_output=True,
                              text=True, timeout=60, cwd=str(tmp_path))
    for args, message in (((), "missing command: once"), (("sync",), "No such command 'sync'"),
                          (("once", "--bogus"), "No such option '--bogus'"),
                          (("run", "--level", "9"), "--level"), (("once", "extra"), "unexpected extra argument")):
        result = cli(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert "Usage: censys-qualys" in result.stderr and message in result.stderr, (args, result.stderr)
    result = cli("--help")
    assert result.returncode == 0 and "once" in result.stdout and "run" in result.stdout
    assert cli("once", "-h").returncode == 0


def test_a_failed_cycle_still_ends_with_the_summary(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host(f"192.0.2.{i}", "ASSOCIATE") for i in range(1, 9)])
    settings = write_settings(tmp_path, censys.url, qualys.url, batchSize=4, excludeHosts="false")
    for fault in ("busy", "busy", "401"):       # batch 1: list excluded + add; batch 2's add is refused
        qualys.inject(fault)
    result = once(settings)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert "Bad Login/Password" in lines[-2] and "qualys_username and qualys_password" in lines[-2]
    assert lines[-1].endswith("Summary: events=4 batches=1 added=4 excluded=0 unexcluded=0 ipv6_skipped=0 "
                              "next_id=5 result=failed"), lines[-1]
    censys.inject("invalid-cursor")            # a Censys failure before anything was read
    result = once(settings)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert "Censys" in lines[-2] and "ERROR" in lines[-2].upper()
    assert "Summary: events=0 batches=0" in lines[-1] and lines[-1].endswith("next_id=5 result=failed")
    result = once(settings)
    assert result.returncode == 0 and result.stderr.strip().splitlines()[-1].endswith("next_id=9 result=ok")


# ---------------------------------------------------------------- packaging
def test_the_script_runs_the_command_without_docker(tmp_path, emulators):
    censys, qualys = emulators
    censys.append([host("198.51.100.77", "ASSOCIATE")])
    settings = write_settings(tmp_path, censys.url, qualys.url)
    env = dict(os.environ, CQ_NO_DOCKER="1", CQ_SETTINGS=settings, CQ_STATE_DIR=str(tmp_path / "state"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    result = subprocess.run([os.path.join(REPO, "censys-qualys.sh"), "once"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert qualys.state.asset_ips == {"198.51.100.77"}
    assert (tmp_path / "state" / "censys-qualys.position.json").exists()


def test_the_docker_commands_it_would_run(tmp_path):
    (tmp_path / "settings.yaml").write_text("x: 1\n")
    env = dict(os.environ, CQ_DRY_RUN="1", CQ_SETTINGS=str(tmp_path / "settings.yaml"),
               CQ_STATE_DIR=str(tmp_path / "state"), CENSYS_ASM_API_KEY="k")
    run = lambda cmd: subprocess.run([os.path.join(REPO, "censys-qualys.sh"), cmd], capture_output=True,
                                     text=True, env=env, timeout=30)
    assert run("build").stdout.strip() == "docker build -t qualys-connector ."
    out = run("run").stdout
    assert out.startswith("docker run -d --name censys-qualys") and "-e CENSYS_ASM_API_KEY" in out
    assert f"--user {os.getuid()}:{os.getgid()}" in out      # can read a mode-600 settings file it mounts
    assert f"-v {tmp_path / 'settings.yaml'}:/config/settings.yaml:ro" in out and out.strip().endswith("censys-qualys run")
    assert f"-v {tmp_path / 'state'}:/var/lib/qualys-connector " in out     # the image's state volume
    assert run("once").stdout.startswith("docker run --rm") and run("once").stdout.strip().endswith(
        "qualys-connector censys-qualys once")
    (tmp_path / "key").write_text("k\n")
    with_file = dict(env, CENSYS_ASM_API_KEY_FILE=str(tmp_path / "key"))
    del with_file["CENSYS_ASM_API_KEY"]
    out = subprocess.run([os.path.join(REPO, "censys-qualys.sh"), "once"], capture_output=True, text=True,
                         env=with_file, timeout=30).stdout
    assert f"-e CENSYS_ASM_API_KEY_FILE -v {tmp_path / 'key'}:{tmp_path / 'key'}:ro" in out
    env["CQ_SETTINGS"] = str(tmp_path / "missing.yaml")           # dry run: the commands even without it
    for cmd, start in (("run", "docker run -d --name censys-qualys"), ("once", "docker run --rm")):
        result = run(cmd)
        assert result.returncode == 0 and result.stdout.startswith(start), result.stderr
        assert f"-v {tmp_path / 'missing.yaml'}:/config/settings.yaml:ro" in result.stdout
        assert "does not exist" in result.stderr
    env["CQ_NO_DOCKER"] = "1"
    result = run("once")
    assert result.returncode == 0 and result.stdout.strip() == (
        f"censys-qualys once --settings {tmp_path / 'missing.yaml'} --state-dir {tmp_path / 'state'}")
    del env["CQ_DRY_RUN"], env["CQ_NO_DOCKER"]                    # for real: still refused
    result = run("run")
    assert result.returncode == 1 and result.stdout == "" and "missing.yaml does not exist" in result.stderr
    usage = run("help")
    assert usage.returncode == 1 and "build|run|once|stop" in usage.stderr and "set -e" not in usage.stderr
    dockerfile = open(os.path.join(REPO, "Dockerfile")).read()
    ignored = open(os.path.join(REPO, ".dockerignore")).read().split()
    assert "USER 10001" in dockerfile                   # numeric, so Kubernetes can check runAsNonRoot
    assert {"**/settings.yaml", "**/QualysGuard.yaml", "**/*.pkcs12"} <= set(ignored)   # secrets never in the image


def test_run_mode_cycles_at_start_and_stops_promptly_on_sigterm(tmp_path, emulators):
    import signal
    import time
    censys, qualys = emulators
    censys.append([host("198.51.100.5", "ASSOCIATE")])
    settings = write_settings(tmp_path, censys.url, qualys.url, interval=60)
    proc = subprocess.Popen([sys.executable, "-m", "qualys_connector.censys.cli", "run", "--settings", settings],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 30
    while not (tmp_path / "censys-qualys.position.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert qualys.state.asset_ips == {"198.51.100.5"}
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=10)      # the 60-minute wait is interrupted at once
    assert proc.returncode == 0 and "next cycle in 60 minutes" in err
    last = err.strip().splitlines()[-1]
    assert "stopped on SIGTERM" in last and "the next run starts at logbook event 2" in last
    assert str(tmp_path / "censys-qualys.position.json") in last

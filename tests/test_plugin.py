"""Plugins behind one typed protocol: the core runs any InputPlugin without knowing its name."""
from __future__ import annotations

import logging
import os
import threading

import pytest

import input_plugins
from conftest import CLIENT_PASSWORD
from qualys_connector import plugin as plugin_api
from qualys_connector.errors import UsageError
from qualys_connector.hostinput import add_host, add_scan_result, encode_line, scan_flush, set_source
from qualys_connector.pipeline import Options, lock_key, prepare, run
from qualys_connector.plugin import InputPlugin, Job

LOG = logging.getLogger("test-plugin")


class Whatever:
    """A plugin the core has never heard of: two hosts, one finding, a config checked up front."""

    NAME = "Whatever"
    SUMMARY = "a plugin for tests"
    PARAMETERS = [("-plugininfo=FILE", "ignored")]
    SHORTEN = False

    def __init__(self):
        self.config_calls = []
        self.jobs: list[Job] = []

    def default_plugininfo(self):
        return "whatever.ini"

    def load_config(self, plugininfo, template_id):
        self.config_calls.append((plugininfo, template_id))
        return {"from": plugininfo}

    def lock_key(self, plugininfo):
        return os.path.abspath(f"lock-of-{plugininfo}")

    def produce(self, job: Job) -> None:
        self.jobs.append(job)
        for command in (set_source("Whatever"), add_host("10.9.0.1"), add_host("10.9.0.2"),
                        add_scan_result("10.9.0.2", "Whatever", 4242, 443, "tcp", "t", "d"), scan_flush()):
            job.out.write(encode_line(command))
            job.summary.commands += 1
        job.summary.hosts, job.summary.findings = 2, 1


def test_the_bundled_plugins_satisfy_the_protocol():
    for key in input_plugins.PLUGINS:
        assert isinstance(input_plugins.load(key), InputPlugin)
    assert isinstance(Whatever(), InputPlugin)


def test_something_without_produce_is_not_a_plugin():
    class Half:
        NAME, SUMMARY, PARAMETERS, SHORTEN = "half", "", [], False

    assert not isinstance(Half(), InputPlugin)


def test_prepare_checks_the_config_of_any_plugin_before_the_run(tmp_path):
    whatever = Whatever()
    options = Options(plugin=whatever, csvfile=str(tmp_path / "out.csv"), template_id="77")
    plugin, config = prepare(options, LOG)
    assert plugin is whatever and config == {"from": "whatever.ini"}
    assert whatever.config_calls == [("whatever.ini", "77")]


def test_the_lock_key_is_the_plugins_own():
    assert lock_key(Options(plugininfo="a.ini"), Whatever()) == os.path.abspath("lock-of-a.ini")
    qualysguard, csv = input_plugins.load("QualysGuard"), input_plugins.load("csv")
    assert lock_key(Options(plugininfo="x/QG.yaml"), qualysguard) == os.path.abspath("x/QG.yaml")
    assert lock_key(Options(), qualysguard) == os.path.abspath(qualysguard.default_plugininfo())
    assert lock_key(Options(plugininfo="in.csv"), csv) == os.path.abspath("in.csv")
    assert lock_key(Options(), csv) == os.path.abspath("csv")


def test_names_are_looked_up_through_what_the_edge_handed_in(monkeypatch, tmp_path):
    whatever = Whatever()
    asked = []
    monkeypatch.setattr(plugin_api, "_find", lambda name: asked.append(name) or whatever)
    plugin, _ = prepare(Options(plugin="WhatEver", csvfile=str(tmp_path / "o.csv")), LOG)
    assert plugin is whatever and asked == ["WhatEver"]


def test_without_a_handed_in_lookup_a_name_cannot_be_resolved(monkeypatch):
    monkeypatch.setattr(plugin_api, "_find", None)
    with pytest.raises(RuntimeError, match="use_plugins"):
        plugin_api.find_plugin("csv")


def test_the_edge_hands_in_the_bundled_plugins():
    import qualys_connector.cli  # noqa: F401 - importing the edge hands the lookup in
    assert plugin_api.find_plugin("CSV") is input_plugins.load("csv")
    with pytest.raises(UsageError, match="unknown plugin 'nope'"):
        plugin_api.find_plugin("nope")


def test_the_job_carries_only_what_a_plugin_uses():
    assert not hasattr(Job, "interruptible_sleep") and "qualys_client" not in Job.__dataclass_fields__


def test_a_run_writes_what_an_unknown_plugin_produced(tmp_path):
    out = tmp_path / "out.csv"
    whatever = Whatever()
    summary = run(Options(plugin=whatever, csvfile=str(out)), log=LOG)
    assert summary.outcome == "written" and (summary.hosts, summary.findings, summary.commands) == (2, 1, 5)
    assert out.read_text().splitlines() == [
        "SetSource,Whatever", "AddHost,10.9.0.1", "AddHost,10.9.0.2",
        'AddScanResult,10.9.0.2,"Whatever",4242,443,tcp,"t","d","cve_ids:","bugtraq_ids:"', "ScanFlush"]
    job = whatever.jobs[0]
    assert job.plugininfo == "whatever.ini" and job.config == {"from": "whatever.ini"} and job.max_size == 65536


def test_an_unknown_plugin_is_delivered_to_the_fmc_over_tls(fmc, pki):
    whatever = Whatever()
    options = Options(plugin=whatever, server="127.0.0.1", port=fmc.port, pkcs12=pki.client_pkcs12,
                      password=CLIENT_PASSWORD)
    summary = run(options, log=LOG, stop=threading.Event())
    assert summary.outcome == "delivered" and summary.delivery.messages_acked == summary.delivery.messages_total
    hosts = fmc.netmap.export()["hosts"]
    assert set(hosts) == {"10.9.0.1", "10.9.0.2"}
    assert [(r["vuln_id"], r["port"], r["proto"]) for r in hosts["10.9.0.2"]["scan_results"]] == [("4242", 443, "tcp")]

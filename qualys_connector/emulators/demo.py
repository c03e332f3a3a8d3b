"""The README's first command: the whole main job, end to end, against the bundled emulators.

It does what a user trying the tool would do by hand: mint a throwaway PKI, start the Qualys
API emulator (a generated report) and the FMC host input emulator on free loopback ports, write
a QualysGuard.yaml, run the real ``qualys-connector`` command, then compare the FMC emulator's
network map with the report. Everything goes into one directory, named at the end, so the
printed command can be run again by hand.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter

HOSTS = 3000
VULNS = 8
TEMPLATE = "424242"
IP_RANGES = "10.0.0.0/21, 2001:db8::/32"


def _bin(name: str) -> str:
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


def _wait_port(path: str, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read().strip())
        if proc.poll() is not None:
            raise SystemExit(f"demo: the {what} exited early (code {proc.returncode}); see its log in the run directory")
        time.sleep(0.05)
    raise SystemExit(f"demo: the {what} did not start within {timeout:.0f} s")


def expected_findings(hosts: int, vulns: int, ip_ranges: str) -> Counter:
    from .qualys.reportgen import expected_findings as gen
    from ..ipranges import IPRanges

    ranges = IPRanges.parse(ip_ranges)
    out: Counter = Counter()
    for ip, qid, port, proto, kind in gen(hosts=hosts, vulns_per_host=vulns, types=("Vuln", "Practice")):
        if ip not in ranges:
            continue
        if proto not in ("tcp", "udp"):
            port, proto = None, None
        out[(ip, qid, port, proto)] = 1   # the FMC sees icmp and host-level alike
    return out


def expected_detections(hosts, ip_ranges: str) -> Counter:
    """What a detection pull must deliver: every open (not Fixed) Confirmed/Potential detection inside
    ip_ranges of the model the emulator generates with ``--detection-hosts hosts`` (seed 1), or of
    ``hosts`` when it is such a model (a copy changed as the emulator's was)."""
    from .qualys.detectionmodel import DetectionModel
    from ..ipranges import IPRanges

    ranges = IPRanges.parse(ip_ranges)
    model = DetectionModel.generate(hosts) if isinstance(hosts, int) else hosts
    out: Counter = Counter()
    for host in model.hosts:
        if host.address not in ranges:
            continue
        for d in host.detections:
            if d.status == "Fixed" or d.type == "Info":
                continue
            port, proto = (d.port, d.protocol) if d.protocol in ("tcp", "udp") and d.port else (None, None)
            out[(host.address, d.qid, port, proto)] = 1
    return out


def demo_changes(model) -> list[dict]:
    """The incremental step's changes to the detections model: one host remediated, one QID fixed
    on another, a new detection on a third (a QID the KnowledgeBase cache has not seen), a new host."""
    ranges_v4 = [h for h in model.hosts if h.ip and sum(d.status != "Fixed" and d.type != "Info"
                                                         for d in h.detections) >= 2]
    a, b, c = ranges_v4[:3]
    qid = next(d.qid for d in b.detections if d.status != "Fixed" and d.type != "Info")
    # A new host needs an address no host of the model has: the FMC knows hosts by address, so a
    # second Qualys host on a used one would replace that host's results (README: repeated addresses).
    used = {h.ip for h in model.hosts}
    new_ip = next(ip for ip in (f"10.0.7.{n}" for n in range(254, 0, -1)) if ip not in used)
    return [{"op": "remediate", "host_id": a.id}, {"op": "fix", "host_id": b.id, "qid": qid},
            {"op": "add_detection", "host_id": c.id, "qid": 990001, "port": 8443, "protocol": "tcp"},
            {"op": "add_host", "ip": new_ip, "dns": "new.demo.example",
             "detections": [{"qid": 990002, "port": 22, "protocol": "tcp"}]}]


def network_map_findings(export: dict) -> Counter:
    out: Counter = Counter()
    for ip, host in export.get("hosts", {}).items():
        for result in host.get("scan_results", []):
            port = result.get("port")
            out[(ip, int(result["vuln_id"]), int(port) if port not in (None, "") else None,
                 result.get("proto") or None)] += 1
    return out


def compare(db: str, env: dict, run_dir: str, want: Counter, returncode: int, detections: bool) -> bool:
    """Export the FMC emulator's network map and say MATCH or MISMATCH against ``want``."""
    export = json.loads(subprocess.run([_bin("fmc-emulator"), "export", "--db", db], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    with open(os.path.join(run_dir, "network-map.json"), "w") as fh:
        json.dump(export, fh, indent=1)
    got = network_map_findings(export)
    missing, extra = want - got, got - want
    print(f"    network map: {len(export.get('hosts', {}))} hosts, {sum(got.values())} scan results")
    print(f"    {'open detections' if detections else 'report'} inside ip_ranges ({IP_RANGES}): "
          f"{sum(want.values())} findings")
    ok = returncode == 0 and not missing and not extra
    if ok:
        print("    MATCH: every finding inside ip_ranges arrived exactly once, nothing else did")
    else:
        print(f"    MISMATCH: connector exit {returncode}, {sum(missing.values())} missing, "
              f"{sum(extra.values())} unexpected")
    return ok


def incremental_step(hosts: int, qport: int, command: list[str], db: str, env: dict, run_dir: str) -> bool:
    """--detections, second part: change the emulator's model through its control call, run the
    connector again (an incremental pull: only the changed hosts), and compare again."""
    import urllib.request
    from .qualys.detectionmodel import DetectionModel

    model = DetectionModel.generate(hosts)          # the emulator's model (seed 1), changed alike below
    changes = demo_changes(model)
    print("[+1] changing Qualys's detections: " + ", ".join(
        f"{c['op']} {c.get('host_id') or c.get('ip')}" + (f" QID {c['qid']}" if "qid" in c else "") for c in changes))
    for change in changes:
        request = urllib.request.Request(f"http://127.0.0.1:{qport}/emulator/detections", method="POST",
                                         data=json.dumps(change).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
        model.apply(change)
    print("[+2] running the same command again (an incremental pull: only the hosts changed since the first)")
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    sys.stderr.write(result.stderr)
    summary = [line for line in result.stderr.splitlines() if "Summary:" in line]
    if summary:
        print("    second run: " + summary[-1].split("Summary: ", 1)[1])
    print("[+3] comparing the FMC network map with the changed detections")
    return compare(db, env, run_dir, expected_detections(model, IP_RANGES), result.returncode, True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="run directory (default: ./demo-run-<time>)")
    parser.add_argument("--hosts", type=int, default=HOSTS, help=f"hosts in the generated report (default {HOSTS})")
    parser.add_argument("--vulns", type=int, default=VULNS, help=f"findings per host (default {VULNS})")
    parser.add_argument("--detections", action="store_true",
                        help="pull: detections (host detection API + KnowledgeBase) instead of the template's report; "
                             "then a second, incremental run after changing the emulator's detections")
    args = parser.parse_args(argv)
    from .pki import init_pki

    run_dir = os.path.abspath(args.dir or time.strftime("demo-run-%Y%m%d-%H%M%S"))
    os.makedirs(run_dir, exist_ok=True)
    env = dict(os.environ)
    env["QC_PKCS12_PASSWORD"] = secrets.token_urlsafe(12)
    env["QC_DEMO_QUALYS_PASSWORD"] = qualys_password = secrets.token_urlsafe(12)
    env["QC_LOCK_DIR"] = os.path.join(run_dir, "locks")
    env["QC_STATE_DIR"] = os.path.join(run_dir, "state")      # the KnowledgeBase cache of --detections
    print(f"[1/5] minting a throwaway PKI in {run_dir}/pki")
    pki = init_pki(os.path.join(run_dir, "pki"), client_password=env["QC_PKCS12_PASSWORD"])

    procs: list[subprocess.Popen] = []
    try:
        what = (f"{args.hosts} hosts with detections" if args.detections
                else f"template {TEMPLATE}: {args.hosts} hosts x {args.vulns} findings")
        print(f"[2/5] starting the Qualys API emulator ({what})")
        qlog = open(os.path.join(run_dir, "qualys-emulator.log"), "w")
        qport_file = os.path.join(run_dir, "qualys.port")
        served = ["--generate", f"{TEMPLATE}={args.hosts}x{args.vulns}", "--report-delay", "1",
                  "--detection-hosts", str(args.hosts)]
        procs.append(subprocess.Popen(
            [_bin("qualys-emulator"), "--port", "0", "--port-file", qport_file, "--user", "demo",
             "--password-env", "QC_DEMO_QUALYS_PASSWORD", *served], stdout=qlog, stderr=subprocess.STDOUT, env=env))
        qport = _wait_port(qport_file, procs[-1], "Qualys emulator")

        print("[3/5] starting the FMC host input emulator")
        flog = open(os.path.join(run_dir, "fmc-emulator.log"), "w")
        fport_file = os.path.join(run_dir, "fmc.port")
        db = os.path.join(run_dir, "network-map.sqlite")
        procs.append(subprocess.Popen(
            [_bin("fmc-emulator"), "serve", "--pki", pki.directory, "--port", "0", "--port-file", fport_file,
             "--db", db], stdout=flog, stderr=subprocess.STDOUT, env=env))
        fport = _wait_port(fport_file, procs[-1], "FMC emulator")

        config = os.path.join(run_dir, "QualysGuard.yaml")
        with open(config, "w") as fh:
            source = "pull: detections\npage_size: 500\n" if args.detections else f"template_id: {TEMPLATE}\n"
            fh.write(f"# written by scripts/demo; the password comes from QC_QUALYS_PASSWORD\n"
                     f"user_id: demo\n{source}url: http://127.0.0.1:{qport}\n"
                     f"add_host: y\nip_ranges: {IP_RANGES}\npoll_interval: 0.5\nmax_wait: 120\n")
        os.chmod(config, 0o600)
        env["QC_QUALYS_PASSWORD"] = qualys_password
        command = [_bin("qualys-connector"), "-server=127.0.0.1", f"-port={fport}",
                   f"-pkcs12={pki.client_pkcs12}", f"-plugininfo={config}",
                   f"-logfile={os.path.join(run_dir, 'qualys-connector.log')}", "-stderr"]
        print("[4/5] running:", " ".join(shlex.quote(c) for c in command))
        result = subprocess.run(command, env=env)

        print(f"[5/5] comparing the FMC network map with the {'detections' if args.detections else 'report'}")
        want = (expected_detections(args.hosts, IP_RANGES) if args.detections
                else expected_findings(args.hosts, args.vulns, IP_RANGES))
        ok = compare(db, env, run_dir, want, result.returncode, args.detections)
        if args.detections and ok:
            ok = incremental_step(args.hosts, qport, command, db, env, run_dir)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    env_file = os.path.join(run_dir, "demo.env")
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"export QC_PKCS12_PASSWORD={shlex.quote(env['QC_PKCS12_PASSWORD'])}\n"
                 f"export QC_QUALYS_PASSWORD={shlex.quote(qualys_password)}\n"
                 f"export QC_DEMO_QUALYS_PASSWORD={shlex.quote(qualys_password)}\n"
                 f"export QC_STATE_DIR={shlex.quote(env['QC_STATE_DIR'])}\n")
    rerun = os.path.join(run_dir, "rerun.sh")
    with open(rerun, "w") as fh:
        fh.write("#!/usr/bin/env bash\n# Start both emulators again on the same ports and run the connector once more.\n"
                 f"set -u\ncd {shlex.quote(run_dir)}\n. ./demo.env\n"
                 f"{_bin('qualys-emulator')} --port {qport} --user demo --password-env QC_DEMO_QUALYS_PASSWORD "
                 f"{' '.join(served)} >> qualys-emulator.log 2>&1 &\n"
                 f"{_bin('fmc-emulator')} serve --pki pki --port {fport} --db network-map.sqlite >> fmc-emulator.log 2>&1 &\n"
                 "sleep 2\n" + " ".join(shlex.quote(c) for c in command) + "\nrc=$?\nkill %1 %2\nwait\nexit $rc\n")
    os.chmod(rerun, 0o755)
    print(f"\nEverything is in {run_dir}")
    print("  QualysGuard.yaml, pki/, network-map.json, the three logs; passwords in demo.env (mode 600)")
    print(f"To run it again by hand: {rerun}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the QualysGuard path: how fast, and how flat in memory, compared with the floor.

For each report size (hosts x 20 findings, 2,000 distinct QIDs, glossary after the hosts, some
IPv6 hosts) it measures, each in a child process of its own:
  floor  one plain lxml.etree.iterparse pass that clears every element: the least any Python
         parser of this file can cost;
  parse  qualys-connector -csvfile=... with report_file: XML -> host input CSV;
  send   the same run sending to the FMC emulator started in --sink mode (it only acknowledges).
and prints wall time, findings per second, peak RSS (from wait4 on that child) and the ratio to
the floor. The reports are generated once into a cache directory. Results also go to JSON.
With --detections it also measures
  pull   a Host List Detection pull of the same number of hosts (5 detections each, every status)
         from the Qualys emulator, 1,000 hosts a page, through the pager and page parser
         (qualys_connector/qualys/detections.py); no ratio to the floor (the work differs).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = (1_000, 10_000, 100_000)
VULNS = 20
QIDS = 2_000

FLOOR = r"""
import sys
from lxml import etree
for _, elem in etree.iterparse(sys.argv[1], events=("end",), resolve_entities=False, no_network=True,
                               load_dtd=False, huge_tree=True):
    elem.clear()
"""


PULL = r"""
import sys
import httpx
from qualys_connector.qualys.detections import DetectionPull, detection_form, httpx_post
with httpx.Client(base_url=sys.argv[1], auth=("bench", "bench"), headers={"X-Requested-With": "bench"},
                  timeout=600) as client:
    form = detection_form(truncation_limit=1000, statuses="New,Active,Re-Opened,Fixed")
    found = sum(len(h.detections) for h in DetectionPull(httpx_post(client), form))
if found != int(sys.argv[2]):
    raise SystemExit(f"pulled {found} detections, expected {sys.argv[2]}")
"""
PULL_DETECTIONS = 5


def bin_path(name: str) -> str:
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


def measure(argv: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS in bytes and exit code of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed ({proc.returncode}):\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024, proc.returncode


def ensure_report(cache: str, hosts: int) -> str:
    from qualys_connector.emulators.qualys.reportgen import generate_report
    path = os.path.join(cache, f"report-{hosts}x{VULNS}.xml")
    if not os.path.exists(path):
        print(f"generating {path} ...", file=sys.stderr)
        tmp = path + ".partial"
        with open(tmp, "wb") as out:
            generate_report(out, hosts=hosts, vulns_per_host=VULNS, distinct_qids=QIDS, seed=7)
        os.replace(tmp, path)
    return path


def count_findings(report: str, work: str, env: dict) -> int:
    """Findings the connector emits for the report (from a dry run's CSV), for findings/s."""
    out = os.path.join(work, "count.csv")
    config = write_config(work, report)
    subprocess.run([bin_path("qualys-connector"), f"-c={out}", f"-pl={config}", "-le=1"], env=env, check=True)
    with open(out, "rb") as fh:
        return sum(1 for line in fh if line.startswith(b"AddScanResult"))


def write_config(work: str, report: str) -> str:
    path = os.path.join(work, "QualysGuard.yaml")
    with open(path, "w") as fh:
        fh.write(f"report_file: {report}\nadd_host: y\n")
    os.chmod(path, 0o600)
    return path


def start_sink(work: str, env: dict) -> tuple[subprocess.Popen, int, str]:
    from qualys_connector.emulators.pki import init_pki
    pki = init_pki(os.path.join(work, "pki"), client_password="bench")
    port_file = os.path.join(work, "fmc.port")
    proc = subprocess.Popen([bin_path("fmc-emulator"), "serve", "--pki", pki.directory, "--port", "0",
                             "--port-file", port_file, "--sink"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, int(open(port_file).read()), pki.client_pkcs12
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("bench: the FMC emulator did not start")


def start_qualys(work: str, env: dict, hosts: int) -> tuple[subprocess.Popen, str]:
    port_file = os.path.join(work, f"qualys-{hosts}.port")
    proc = subprocess.Popen([bin_path("qualys-emulator"), "--port", "0", "--port-file", port_file, "--user", "bench",
                             "--detection-hosts", str(hosts)], env=dict(env, QUALYS_EMULATOR_PASSWORD="bench"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, f"http://127.0.0.1:{int(open(port_file).read())}"
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("bench: the Qualys emulator did not start")


def measure_on_terminal(argv: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """``measure``, with the child's stdout and stderr on a pseudo-terminal: its live display is on."""
    import pty
    import threading
    master, slave = pty.openpty()
    env = dict(env or os.environ, TERM="xterm")
    env.pop("NO_COLOR", None)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    seen: list[bytes] = []

    def drain() -> None:            # what a terminal does: read everything, as fast as it comes
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    reader.join(timeout=10)
    os.close(master)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed ({code}) on a terminal:\n"
                         f"{b''.join(seen)[-2000:].decode(errors='replace')}")
    return elapsed, usage.ru_maxrss * 1024, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="qualys-connector benchmark (see BENCHMARKS.md)")
    parser.add_argument("--quick", action="store_true", help="only the smallest report (1,000 hosts)")
    parser.add_argument("--sizes", help="comma list of host counts (default 1000,10000,100000)")
    parser.add_argument("--cache", default=os.path.join(REPO, ".bench-cache"), help="where reports are kept")
    parser.add_argument("--json", default=None, help="write results here (default: CACHE/bench.json)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure every stage N times, interleaved, and keep the fastest time and the "
                             "largest peak RSS (a shared VM's noise only ever adds time)")
    parser.add_argument("--detections", action="store_true",
                        help="also time a Host List Detection pull of each size from the Qualys emulator")
    parser.add_argument("--terminal", action="store_true",
                        help="also run parse and send on a pseudo-terminal, with the live progress display "
                             "(stages parse-tty, send-tty), to see what the display costs")
    args = parser.parse_args(argv)
    sizes = (SIZES[0],) if args.quick else tuple(int(s) for s in args.sizes.split(",")) if args.sizes else SIZES
    os.makedirs(args.cache, exist_ok=True)
    env = dict(os.environ, QC_PKCS12_PASSWORD="bench")
    work = tempfile.mkdtemp(prefix="qc-bench-")
    env["QC_LOCK_DIR"] = os.path.join(work, "locks")
    rows = []
    sink = None
    try:
        sink, port, pkcs12 = start_sink(work, env)
        for hosts in sizes:
            report = ensure_report(args.cache, hosts)
            findings = count_findings(report, work, env)
            config = write_config(work, report)
            commands = {
                "floor": [sys.executable, "-c", FLOOR, report],
                "parse": [bin_path("qualys-connector"), f"-c={os.path.join(work, 'out.csv')}", f"-pl={config}", "-le=1"],
                "send": [bin_path("qualys-connector"), "-server=127.0.0.1", f"-port={port}", f"-pkcs12={pkcs12}",
                         f"-pl={config}", "-le=1"],
            }
            if args.terminal:
                commands["parse-tty"], commands["send-tty"] = commands["parse"], commands["send"]
            best: dict[str, tuple[float, int]] = {}
            for _ in range(max(1, args.repeat)):
                for stage, argv_ in commands.items():
                    seconds, rss, _ = (measure_on_terminal if stage.endswith("-tty") else measure)(argv_, env)
                    old = best.get(stage)
                    best[stage] = (min(seconds, old[0]), max(rss, old[1])) if old else (seconds, rss)
            floor_t = best["floor"][0]
            if args.detections:
                qualys, url = start_qualys(work, env, hosts)
                try:
                    expected = hosts * PULL_DETECTIONS
                    for _ in range(max(1, args.repeat)):
                        seconds, rss, _ = measure([sys.executable, "-c", PULL, url, str(expected)], env)
                        old = best.get("pull")
                        best["pull"] = (min(seconds, old[0]), max(rss, old[1])) if old else (seconds, rss)
                finally:
                    qualys.terminate()
                    qualys.wait(timeout=10)
            for stage, (seconds, rss) in best.items():
                if stage == "pull":
                    rows.append({"hosts": hosts, "stage": stage, "seconds": round(seconds, 3),
                                 "findings": hosts * PULL_DETECTIONS,
                                 "findings_per_s": round(hosts * PULL_DETECTIONS / seconds) if seconds else None,
                                 "peak_rss_mb": round(rss / 2**20, 1), "ratio_to_floor": None, "report_mb": None})
                    continue
                rows.append({"hosts": hosts, "stage": stage, "seconds": round(seconds, 3),
                             "findings": findings, "findings_per_s": round(findings / seconds) if seconds else None,
                             "peak_rss_mb": round(rss / 2**20, 1),
                             "ratio_to_floor": round(seconds / floor_t, 2) if floor_t else None,
                             "report_mb": round(os.path.getsize(report) / 1e6, 1)})
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'hosts':>8} {'stage':>6} {'seconds':>9} {'findings/s':>11} {'peak RSS MB':>12} {'x floor':>8}")
    for row in rows:
        print(f"{row['hosts']:>8} {row['stage']:>6} {row['seconds']:>9.2f} {row['findings_per_s'] or 0:>11} "
              f"{row['peak_rss_mb']:>12.1f} {row['ratio_to_floor'] or 0:>8.2f}")
    by = {(r["hosts"], r["stage"]): r for r in rows}
    checks = []
    if (100_000, "parse") in by:
        p, f, s = by[(100_000, "parse")], by[(100_000, "floor")], by[(100_000, "send")]
        checks.append(("parse peak RSS < 150 MB", p["peak_rss_mb"] < 150, f"{p['peak_rss_mb']} MB"))
        if (10_000, "parse") in by:
            ratio = p["peak_rss_mb"] / by[(10_000, "parse")]["peak_rss_mb"]
            checks.append(("RSS(100k) <= 1.2 x RSS(10k)", ratio <= 1.2, f"{ratio:.2f}x"))
        checks.append(("parse <= 1.5 x floor", p["seconds"] <= 1.5 * f["seconds"], f"{p['seconds'] / f['seconds']:.2f}x"))
        checks.append(("send <= 1.3 x parse", s["seconds"] <= 1.3 * p["seconds"], f"{s['seconds'] / p['seconds']:.2f}x"))
    for name, ok, value in checks:
        print(f"{'MET ' if ok else 'MISS'} {name}: {value}")
    result = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "repeat": max(1, args.repeat),
              "rows": rows,
              "targets": [{"name": n, "met": ok, "value": v} for n, ok, v in checks]}
    path = args.json or os.path.join(args.cache, "bench.json")
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

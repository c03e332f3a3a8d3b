"""Benchmark of the QualysGuard path: how fast, and how flat in memory, compared with the floor.

For each report size (hosts x 20 findings, 2,000 distinct QIDs, real-shaped: mostly Ig findings
with long RESULT tables, glossary after the hosts, some IPv6 hosts) it measures, each in a child
process of its own and all in the same run:
  floor    lxml.etree.iterparse(path, tag=("HOST", "VULN_DETAILS")) clearing each element: libxml2
           building every element, Python seeing only the two elements that repeat. The least a
           Python parser of this file that looks at every host can cost; parse is compared to it;
  parse    qualys-connector -csvfile=... with report_file: XML -> host input CSV;
  send     the same run sending to the FMC emulator started in --sink mode (it only acknowledges);
  csvsend  qualys-connector ... csv: our send of the CSV that parse wrote, to the same sink;
  refsend  a minimal client (REFERENCE below: TLS, TCP_NODELAY, framing by hand with struct, one
           write per DATA message; no project code) sending that same CSV to the same sink:
           the floor of the send path; csvsend is compared to it;
and prints wall time, findings per second, peak RSS (from wait4 on that child) and the ratios.
The reports are generated once into a cache directory. Results also go to JSON.
With --detections it also measures
  pull     a Host List Detection pull of the same number of hosts (5 detections each, every status)
           from the Qualys emulator, 1,000 hosts a page, through the pager and page parser
           (qualys_connector/qualys/detections.py); no ratio to the floor (the work differs).
           --only-detections measures the pull alone (no report is generated, parsed or sent).
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
for _, elem in etree.iterparse(sys.argv[1], events=("end",), tag=("HOST", "VULN_DETAILS"), resolve_entities=False,
                               no_network=True, load_dtd=False, huge_tree=True):
    elem.clear()
    while elem.getprevious() is not None:
        del elem.getparent()[0]
"""

# The reference client: what sending a host input file costs with nothing but the protocol.
# Set* lines at the top are repeated at the head of every DATA message, as the protocol wants.
REFERENCE = r"""
import os, socket, ssl, struct, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

host, port, p12, password, path = sys.argv[1:6]
key, cert, extra = pkcs12.load_key_and_certificates(open(p12, "rb").read(), password.encode())
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
pem += cert.public_bytes(serialization.Encoding.PEM)
fd = os.memfd_create("ref-client")
os.write(fd, pem)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
context.load_cert_chain(f"/proc/self/fd/{fd}")
raw = socket.create_connection((host, int(port)))
raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
conn = context.wrap_socket(raw)
HEAD = struct.Struct(">II")

def read_frame():
    buf = b""
    while len(buf) < 8:
        buf += conn.recv(8 - len(buf))
    kind, length = HEAD.unpack(buf)
    body = b""
    while len(body) < length:
        body += conn.recv(length - len(body))
    return kind, body

conn.sendall(HEAD.pack(2, 4) + struct.pack(">I", 1))
kind, body = read_frame()
assert kind == 1, (kind, body)
max_size = struct.unpack(">I", body)[0]
header, parts, size, messages = b"", [], 0, 0

def flush():
    global parts, size, messages
    payload = header + b"".join(parts)
    conn.sendall(HEAD.pack(3, len(payload)) + payload)
    kind, reply = read_frame()
    assert kind == 3 and reply.startswith(b"Done processing"), (kind, reply[:200])
    parts, size, messages = [], 0, messages + 1

with open(path, "rb") as fh:
    for line in fh:
        if not parts and line.startswith(b"Set"):
            header += line
            continue
        if size + len(line) + len(header) > max_size:
            flush()
        parts.append(line)
        size += len(line)
if parts:
    flush()
conn.close()
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


def measure(argv: list[str], env: dict | None = None) -> tuple[float, int, float]:
    """Wall seconds, peak RSS in bytes and CPU seconds (user + system) of one child process.

    CPU time is what a busy shared machine disturbs least: other processes delay a child (wall
    time) far more than they make its own work cost more."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed ({proc.returncode}):\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


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
    return elapsed, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def measure_report_stages(args, hosts, work, env, port, pkcs12, best, rows) -> None:
    """floor, parse, send, csvsend, refsend (and the -tty twins) of one report size, into ``rows``."""
    report = ensure_report(args.cache, hosts)
    findings = count_findings(report, work, env)
    config = write_config(work, report)
    csv_file = os.path.join(work, "count.csv")      # what parse writes, kept for the two CSV sends
    send_args = ["-server=127.0.0.1", f"-port={port}", f"-pkcs12={pkcs12}", "-le=1"]
    commands = {
        "floor": [sys.executable, "-c", FLOOR, report],
        "parse": [bin_path("qualys-connector"), f"-c={os.path.join(work, 'out.csv')}", f"-pl={config}", "-le=1"],
        "send": [bin_path("qualys-connector"), *send_args, f"-pl={config}"],
        "csvsend": [bin_path("qualys-connector"), *send_args, f"-pl={csv_file}", "csv"],
        "refsend": [sys.executable, "-c", REFERENCE, "127.0.0.1", str(port), pkcs12, env["QC_PKCS12_PASSWORD"],
                    csv_file],
    }
    if args.terminal:
        commands["parse-tty"], commands["send-tty"] = commands["parse"], commands["send"]
    for _ in range(max(1, args.repeat)):
        for stage, argv_ in commands.items():
            seconds, rss, cpu = (measure_on_terminal if stage.endswith("-tty") else measure)(argv_, env)
            old = best.get(stage)
            best[stage] = (min(seconds, old[0]), max(rss, old[1]), min(cpu, old[2])) if old else (seconds, rss, cpu)
    csv_lines = sum(1 for _ in open(csv_file, "rb"))
    for stage, (seconds, rss, cpu) in best.items():
        # parse and send are compared to the XML floor, csvsend to the reference client
        floor_t, _, floor_cpu = best["refsend" if stage in ("csvsend", "refsend") else "floor"]
        rows.append({"hosts": hosts, "stage": stage, "seconds": round(seconds, 3),
                     "findings": findings, "findings_per_s": round(findings / seconds) if seconds else None,
                     "peak_rss_mb": round(rss / 2**20, 1),
                     "ratio_to_floor": round(seconds / floor_t, 2) if floor_t else None,
                     "cpu_s": round(cpu, 3), "cpu_ratio_to_floor": round(cpu / floor_cpu, 2) if floor_cpu else None,
                     "report_mb": round(os.path.getsize(report) / 1e6, 1), "csv_lines": csv_lines})


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
    parser.add_argument("--only-detections", action="store_true",
                        help="time only the detection pull (no report is generated, parsed or sent)")
    parser.add_argument("--terminal", action="store_true",
                        help="also run parse and send on a pseudo-terminal, with the live progress display "
                             "(stages parse-tty, send-tty), to see what the display costs")
    args = parser.parse_args(argv)
    sizes = (SIZES[0],) if args.quick else tuple(int(s) for s in args.sizes.split(",")) if args.sizes else SIZES
    os.makedirs(args.cache, exist_ok=True)
    env = dict(os.environ, QC_PKCS12_PASSWORD="bench")
    work = tempfile.mkdtemp(prefix="qc-bench-")
    env["QC_LOCK_DIR"] = os.path.join(work, "locks")
    env["QC_STATE_DIR"] = os.path.join(work, "state")   # no delivery record of the user's is read or written
    rows = []
    sink = None
    try:
        sink, port, pkcs12 = start_sink(work, env)
        args.detections = args.detections or args.only_detections
        for hosts in sizes:
            best: dict[str, tuple[float, int, float]] = {}
            if not args.only_detections:
                measure_report_stages(args, hosts, work, env, port, pkcs12, best, rows)
            if args.detections:
                qualys, url = start_qualys(work, env, hosts)
                try:
                    expected = hosts * PULL_DETECTIONS
                    for _ in range(max(1, args.repeat)):
                        seconds, rss, cpu = measure([sys.executable, "-c", PULL, url, str(expected)], env)
                        old = best.get("pull")
                        best["pull"] = ((min(seconds, old[0]), max(rss, old[1]), min(cpu, old[2])) if old
                                        else (seconds, rss, cpu))
                finally:
                    qualys.terminate()
                    qualys.wait(timeout=10)
                seconds, rss, cpu = best["pull"]    # a different job: no floor to compare with
                rows.append({"hosts": hosts, "stage": "pull", "seconds": round(seconds, 3),
                             "findings": hosts * PULL_DETECTIONS,
                             "findings_per_s": round(hosts * PULL_DETECTIONS / seconds) if seconds else None,
                             "peak_rss_mb": round(rss / 2**20, 1), "ratio_to_floor": None,
                             "cpu_s": round(cpu, 3), "cpu_ratio_to_floor": None, "report_mb": None,
                             "csv_lines": None})
    finally:
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    print("x floor: parse and send against the XML floor, csvsend against refsend (same run)")
    print(f"{'hosts':>8} {'stage':>8} {'seconds':>9} {'findings/s':>11} {'peak RSS MB':>12} {'x floor':>8} "
          f"{'CPU s':>8} {'CPU x floor':>12}")
    for row in rows:
        print(f"{row['hosts']:>8} {row['stage']:>8} {row['seconds']:>9.2f} {row['findings_per_s'] or 0:>11} "
              f"{row['peak_rss_mb']:>12.1f} {row['ratio_to_floor'] or 0:>8.2f} {row['cpu_s']:>8.2f} "
              f"{row['cpu_ratio_to_floor'] or 0:>12.2f}")
    by = {(r["hosts"], r["stage"]): r for r in rows}
    checks = []
    if (100_000, "parse") in by:
        p, f, s = by[(100_000, "parse")], by[(100_000, "floor")], by[(100_000, "send")]
        checks.append(("parse peak RSS < 150 MB", p["peak_rss_mb"] < 150, f"{p['peak_rss_mb']} MB"))
        if (10_000, "parse") in by:
            ratio = p["peak_rss_mb"] / by[(10_000, "parse")]["peak_rss_mb"]
            checks.append(("RSS(100k) <= 1.2 x RSS(10k)", ratio <= 1.2, f"{ratio:.2f}x"))
        checks.append(("parse <= 1.5 x floor", p["seconds"] <= 1.5 * f["seconds"], f"{p['seconds'] / f['seconds']:.2f}x"))
        checks.append(("parse CPU <= 1.5 x floor CPU", p["cpu_s"] <= 1.5 * f["cpu_s"], f"{p['cpu_s'] / f['cpu_s']:.2f}x"))
        checks.append(("send <= 1.2 x parse", s["seconds"] <= 1.2 * p["seconds"], f"{s['seconds'] / p['seconds']:.2f}x"))
    for hosts in sorted({r["hosts"] for r in rows}):
        c = by.get((hosts, "csvsend"))
        if c:   # the send path's target: within 1.5 x the reference client, plus half a second
            r = by[(hosts, "refsend")]
            limit = 1.5 * r["seconds"] + 0.5
            checks.append((f"csvsend <= 1.5 x refsend + 0.5 s ({hosts} hosts, {c['csv_lines']:,} lines)",
                           c["seconds"] <= limit, f"{c['seconds']:.2f} s against {limit:.2f} s "
                           f"({c['ratio_to_floor']:.2f}x refsend)"))
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

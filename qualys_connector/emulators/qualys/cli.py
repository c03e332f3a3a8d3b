"""``qualys-emulator``: the Qualys VM API on loopback, for trying a QualysGuard.yaml without Qualys."""
from __future__ import annotations

import logging
import os
import re

import click

from .. import start_listening, wait_for_stop_signal

from .detectionmodel import DetectionModel, ModelError
from .server import REPORT_FAULTS, QualysEmulator, TemplateSpec

CHANGE_FORMS = "remediate:HOST_ID, fix:HOST_ID:QID, add-detection:HOST_ID:QID[:PORT/PROTOCOL] or add-host:IP"


def parse_change(text: str) -> dict:
    """``--change`` text → the op the control call takes (see the README)."""
    kind, _, rest = text.partition(":")
    args = rest.split(":") if rest else []
    try:
        if kind == "remediate" and len(args) == 1:
            return {"op": "remediate", "host_id": int(args[0])}
        if kind == "fix" and len(args) == 2:
            return {"op": "fix", "host_id": int(args[0]), "qid": int(args[1])}
        if kind == "add-detection" and len(args) in (2, 3):
            op = {"op": "add_detection", "host_id": int(args[0]), "qid": int(args[1])}
            if len(args) == 3:
                port, _, protocol = args[2].partition("/")
                op.update(port=int(port), protocol=protocol or "tcp")
            return op
        if kind == "add-host" and rest:
            return {"op": "add_host", "ip": rest}     # rest, not args: an IPv6 address holds colons
    except ValueError:
        pass
    raise click.BadParameter(f"{text!r}: expected {CHANGE_FORMS}", param_hint="--change")


def _pairs(values, what):
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.strip().isdigit():
            raise click.BadParameter(f"{value!r}: expected TEMPLATE_ID={what}")
        yield key.strip(), rest.strip()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 = a free port.")
@click.option("--port-file", metavar="FILE", help="Write the port here once listening.")
@click.option("--tls", "tls_dir", metavar="DIR", help="Serve HTTPS with a certificate minted into DIR (ca.pem for ca_bundle).")
@click.option("--user", default="user", show_default=True, help="The one API user.")
@click.option("--password-env", default="QUALYS_EMULATOR_PASSWORD", show_default=True, metavar="VAR",
              help="Environment variable holding that user's password.")
@click.option("--template", "template_files", multiple=True, metavar="ID=FILE", help="Serve this XML for a template.")
@click.option("--generate", "generated", multiple=True, metavar="ID=HOSTS[xVULNS]",
              help="Generate a report of HOSTS hosts (VULNS findings each, default 20) for a template.")
@click.option("--report-delay", default=2.0, show_default=True, type=float, help="Seconds from launch to Finished.")
@click.option("--fault", "faults", multiple=True, metavar="ID=FAULT", help="errors|canceled|simple-return|truncated|dropped.")
@click.option("--concurrency-limit", default=2, show_default=True, type=click.IntRange(1),
              help="X-Concurrency-Limit-Limit: calls of one endpoint at once before 409/1960.")
@click.option("--rate-limit", default=300, show_default=True, type=click.IntRange(1),
              help="X-RateLimit-Limit: calls of one endpoint per window before 409/1965.")
@click.option("--rate-window", default=3600, show_default=True, type=click.IntRange(1), help="X-RateLimit-Window-Sec.")
@click.option("--detections", "detections_file", metavar="FILE",
              help="Serve host detections and the KnowledgeBase from this JSON model.")
@click.option("--detection-hosts", default=50, show_default=True, type=click.IntRange(0),
              help="Without --detections: generate this many hosts (seeded by --detection-seed).")
@click.option("--detection-seed", default=1, show_default=True, type=int)
@click.option("--detection-page-cap", default=10000, show_default=True, type=click.IntRange(1),
              help="Most hosts on one detection page, whatever truncation_limit asks.")
@click.option("--change", "changes", multiple=True, metavar="OP", help=f"Change the detections first: {CHANGE_FORMS}.")
@click.option("--save-detections", metavar="FILE",
              help="Write the detections model (after --change) to FILE as JSON and exit without serving.")
def main(host, port, port_file, tls_dir, user, password_env, template_files, generated, report_delay, faults,
         concurrency_limit, rate_limit, rate_window, detections_file, detection_hosts, detection_seed,
         detection_page_cap, changes, save_detections):
    """Serve the Qualys report, asset IP, excluded IP, host detection and KnowledgeBase APIs until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s")
    ops = [parse_change(text) for text in changes]
    try:
        model = (DetectionModel.load(detections_file) if detections_file
                 else DetectionModel.generate(detection_hosts, seed=detection_seed))
        for op in ops:
            model.apply(op)
    except ModelError as exc:
        raise click.ClickException(f"{exc}; fix --detections or --change")
    if save_detections:
        try:
            model.save(save_detections)
        except OSError as exc:
            raise click.ClickException(f"cannot write {save_detections}: {exc.strerror}; "
                                       "give --save-detections a path in a writable directory")
        click.echo(f"wrote {len(model.hosts)} hosts and {len(model.kb)} QIDs to {save_detections}", err=True)
        return
    password = os.environ.get(password_env)
    if not password:
        raise click.UsageError(f"set the API password in the environment variable {password_env}")
    templates: dict[str, TemplateSpec] = {}
    for tid, path in _pairs(template_files, "FILE"):
        try:  # read now, not when a report is fetched: the emulator would serve a broken download
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}; give an XML report file",
                                     param_hint="--template")
        templates[tid] = TemplateSpec(path=path)
    for tid, size in _pairs(generated, "HOSTS[xVULNS]"):
        match = re.fullmatch(r"(\d+)(?:x(\d+))?", size)
        if not match:
            raise click.BadParameter(f"{size!r}: expected HOSTS or HOSTSxVULNS", param_hint="--generate")
        templates[tid] = TemplateSpec(hosts=int(match.group(1)), vulns_per_host=int(match.group(2) or 20))
    for tid, fault in _pairs(faults, "FAULT"):
        if fault not in REPORT_FAULTS or tid not in templates:
            raise click.BadParameter(f"{tid}={fault}: faults are {', '.join(sorted(REPORT_FAULTS))} "
                                     "for a template given with --template or --generate", param_hint="--fault")
        templates[tid].fault = fault
    if not templates:
        templates["424242"] = TemplateSpec(hosts=1000, vulns_per_host=10)
    emulator = QualysEmulator(host, port, users={user: password}, templates=templates, report_delay=report_delay,
                              tls_dir=tls_dir, concurrency_limit=concurrency_limit, rate_limit=rate_limit,
                              rate_window=rate_window, detections=model, detection_page_cap=detection_page_cap)
    start_listening(emulator, host, port, port_file, tls_dir=tls_dir)
    click.echo(f"Qualys emulator at {emulator.url} (user {user}; templates {', '.join(templates)}; "
               f"{len(model.hosts)} hosts with detections; control: POST {emulator.url}/emulator/detections)"
               + (f"; CA for ca_bundle: {emulator.ca_cert}" if emulator.ca_cert else ""), err=True)
    wait_for_stop_signal()
    emulator.stop()
    s = emulator.state
    click.echo(f"served {len(s.request_log)} API calls; reports launched and deleted: {len(s.deleted_reports)}; "
               f"asset IPs {len(s.asset_ips)}, excluded IPs {len(s.excluded_ips)}", err=True)


if __name__ == "__main__":
    main()

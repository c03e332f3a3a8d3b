"""``QualysGuard.yaml``: every key of README "QualysGuard.yaml", validated, with the key and line in errors."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import yamlconf
from .deliveryrecord import MaxClear
from .errors import ConfigError
from .logsetup import add_secret, get_logger

DEFAULT_URL = "https://qualysapi.qualys.com"
MAX_NAME = 255      # source_name, scanner_name, domain: display names, a few words in practice
VULN_TYPES = {"vuln": "Vuln", "practice": "Practice", "ig": "Ig"}

KEYS = ("user_id", "password", "template_id", "url", "add_host", "ip_ranges", "proxy",
        "proxy_username", "proxy_password", "report_file", "keep_report", "scanner_name",
        "source_name", "vuln_types", "min_severity", "set_os", "ascii_only", "domain", "ca_bundle", "verify",
        "timeout", "poll_interval", "max_wait", "fmc_ca", "allow_plain_http", "pull", "page_size", "full_resync",
        "remove_missing", "max_clear")
PULLS = ("report", "detections")
MAX_PAGE_SIZE = 1_000_000

log = get_logger()
_WARNED: set[str] = set()      # url warnings: once per process (process-multiple), not per template


@dataclass
class QualysGuardConfig:
    path: str
    user_id: str | None
    password: str | None
    template_id: str | None
    url: str = DEFAULT_URL
    add_host: bool = False
    ip_ranges: object = None          # ipranges.IPRanges
    proxy: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = None
    report_file: str | None = None
    keep_report: str | None = None
    scanner_name: str = "QualysGuard"
    source_name: str = "QualysGuard"
    vuln_types: tuple[str, ...] = ("Vuln", "Practice")
    min_severity: int = 1
    set_os: bool = False
    ascii_only: bool = True
    domain: str | None = None
    ca_bundle: str | None = None
    fmc_ca: str | None = None         # CA file for the FMC's host input certificate (-fmcca wins)
    verify: bool = True
    timeout: float = 120.0
    poll_interval: float = 30.0
    max_wait: float = 7200.0
    # README "Pulling detections instead of reports": what to ask Qualys for, hosts per page,
    # and whether to ignore the incremental watermark (every detection pull is full for now).
    pull: str = "report"
    page_size: int = 1000
    full_resync: bool = False
    remove_missing: bool = True       # clear hosts the previous run delivered and this one did not
    max_clear: MaxClear = MaxClear(50)  # the safety valve (README "Keeping the FMC current")

    @property
    def tls_verify(self) -> bool | str:
        """What to give httpx: a CA bundle path, or whether to verify at all."""
        if not self.verify:
            return False
        return self.ca_bundle or True


def _path_near(config_path: str, value: str | None) -> str | None:
    """Relative paths in the file are relative to the file, so cron's cwd does not matter."""
    if not value:
        return None
    value = os.path.expanduser(value)
    return value if os.path.isabs(value) else os.path.join(os.path.dirname(os.path.abspath(config_path)), value)


def load(path: str, *, template_override: str | None = None) -> QualysGuardConfig:
    from .ipranges import IPRanges

    data = yamlconf.load_mapping(path, "QualysGuard configuration", example="QualysGuard.yaml.example")
    yamlconf.check_keys(data, KEYS, path)
    yamlconf.warn_if_readable_by_others(path, log)
    s = yamlconf.as_str
    report_file = _path_near(path, s(data, "report_file", path))
    online = report_file is None
    pull = _pull(data, path)
    detections = pull == "detections"
    if detections and report_file:
        raise yamlconf.error(data, "report_file", "cannot be used with pull: detections (a saved report is "
                             "not a detection pull)", path, "remove report_file, or set pull: report")
    if detections and template_override is None and data.get("template_id") not in (None, ""):
        log.warning("%s: template_id is ignored with pull: detections", path)
    cfg = QualysGuardConfig(
        path=path,
        user_id=s(data, "user_id", path, required=online),
        password=s(data, "password", path, required=online, env="QC_QUALYS_PASSWORD"),
        template_id=None if detections else template_override or s(data, "template_id", path, required=online),
        report_file=report_file,
        pull=pull,
    )
    cfg.page_size = yamlconf.as_int(data, "page_size", path, 1000, minimum=1)
    if cfg.page_size > MAX_PAGE_SIZE:
        raise yamlconf.error(data, "page_size", f"is more than {MAX_PAGE_SIZE:,} hosts per page", path,
                             "Qualys documents 1000 as the default; a few thousand is plenty")
    cfg.full_resync = yamlconf.as_bool(data, "full_resync", path, False)
    if detections and data.get("keep_report") not in (None, ""):
        log.warning("%s: keep_report is ignored with pull: detections (there is no report)", path)
    if not detections and template_override is None and not yamlconf.written_in_decimal(data.get("template_id")):
        raise yamlconf.error(data, "template_id", "is not written in decimal digits (YAML would read 0x1A "
                             "as 26, another template)", path, "write the ID as Qualys shows it, digits only")
    if cfg.template_id is not None and not re.fullmatch(r"[0-9]+", str(cfg.template_id).strip()):
        raise yamlconf.error(data, "template_id", f"'{cfg.template_id}' is not a report template ID "
                             "(a number)", path, "see the README: finding your template ID")
    if cfg.template_id is not None:
        cfg.template_id = str(cfg.template_id).strip()
    cfg.url = s(data, "url", path, DEFAULT_URL).rstrip("/")
    yamlconf.check_url(data, "url", cfg.url, path, "for example https://qualysapi.qualys.com")
    cfg.add_host = yamlconf.as_bool(data, "add_host", path, False)
    raw_ranges = data.get("ip_ranges")
    if isinstance(raw_ranges, dict):
        raise yamlconf.error(data, "ip_ranges", "expected a comma list or a YAML list", path)
    try:
        cfg.ip_ranges = IPRanges.parse(list(raw_ranges) if isinstance(raw_ranges, list) else raw_ranges)
    except ValueError as exc:
        raise yamlconf.error(data, "ip_ranges", str(exc), path,
                             "use addresses, CIDR blocks or a-b ranges, separated by commas") from None
    cfg.proxy = s(data, "proxy", path)
    if cfg.proxy:
        yamlconf.check_url(data, "proxy", cfg.proxy, path, "for example https://192.168.1.100:443")
    cfg.proxy_username = s(data, "proxy_username", path)
    cfg.proxy_password = s(data, "proxy_password", path, env="QC_PROXY_PASSWORD")
    cfg.keep_report = None if detections else _path_near(path, s(data, "keep_report", path))
    if cfg.keep_report:
        if os.path.isdir(cfg.keep_report):
            raise yamlconf.error(data, "keep_report", f"{cfg.keep_report} is a directory", path, "give a file name")
        if not os.path.isdir(os.path.dirname(cfg.keep_report)):
            raise yamlconf.error(data, "keep_report", f"the directory of {cfg.keep_report} does not exist", path)
    cfg.scanner_name = s(data, "scanner_name", path, "QualysGuard")
    if "{template_id}" in cfg.scanner_name:
        # One scanner name per template: its ScanFlush then replaces only that template's results
        # on a host, so process-multiple over overlapping templates loses nothing.
        cfg.scanner_name = cfg.scanner_name.replace("{template_id}", cfg.template_id or ("detections" if detections else "saved"))
    cfg.source_name = s(data, "source_name", path, "QualysGuard")
    cfg.vuln_types = _vuln_types(data, path)
    cfg.min_severity = yamlconf.as_int(data, "min_severity", path, 1, minimum=1)
    if cfg.min_severity > 5:
        raise yamlconf.error(data, "min_severity", "severities go from 1 to 5", path)
    cfg.set_os = yamlconf.as_bool(data, "set_os", path, False)
    cfg.ascii_only = yamlconf.as_bool(data, "ascii_only", path, True)
    cfg.domain = s(data, "domain", path)
    cfg.ca_bundle = _path_near(path, s(data, "ca_bundle", path))
    if cfg.ca_bundle:
        yamlconf.check_pem_file(data, "ca_bundle", path, cfg.ca_bundle)
    cfg.fmc_ca = _path_near(path, s(data, "fmc_ca", path))
    if cfg.fmc_ca:
        yamlconf.check_pem_file(data, "fmc_ca", path, cfg.fmc_ca)
    cfg.verify = yamlconf.as_bool(data, "verify", path, True)
    if online:      # a saved report_file asks nobody: url and verify are not used
        yamlconf.check_url_security(data, "url", cfg.url, path, log, verify=cfg.verify, warned=_WARNED,
                                    allow_plain=yamlconf.as_bool(data, yamlconf.ALLOW_PLAIN_HTTP, path, False))
    cfg.timeout = yamlconf.as_float(data, "timeout", path, 120.0, minimum=1, maximum=yamlconf.DAY)
    cfg.poll_interval = yamlconf.as_float(data, "poll_interval", path, 30.0, minimum=0, maximum=yamlconf.DAY)
    cfg.max_wait = yamlconf.as_float(data, "max_wait", path, 7200.0, minimum=0, maximum=yamlconf.MAX_WAIT)
    cfg.remove_missing = yamlconf.as_bool(data, "remove_missing", path, True)
    raw_max_clear = data.get("max_clear")
    if raw_max_clear is not None and raw_max_clear != "":
        if isinstance(raw_max_clear, (bool, list, dict)):
            raise yamlconf.error(data, "max_clear", "expected a percentage or a number of hosts", path,
                                 "for example 50% or 1000")
        try:
            cfg.max_clear = MaxClear.parse(raw_max_clear)
        except ValueError as exc:
            raise yamlconf.error(data, "max_clear", str(exc), path) from None
    for secret in (cfg.password, cfg.proxy_password):
        add_secret(secret)
    for key in ("scanner_name", "source_name", "domain"):
        value = getattr(cfg, key)
        if value and ('"' in value or any(ord(c) < 32 or ord(c) == 127 for c in value)):
            # It is written between quotes into host input lines: a NUL, tab or newline would
            # break the line (the csv plugin refuses a NUL), a quote would end the field.
            raise yamlconf.error(data, key, "may not contain quotes, newlines or other control characters", path)
        if value and len(value) > MAX_NAME:
            # It goes into every DATA message (source, domain) or every result line (scanner):
            # refused here once rather than warned about on every line of the run.
            raise yamlconf.error(data, key, f"is {len(value)} characters long, more than {MAX_NAME}", path,
                                 "use a short display name")
    if report_file:     # last: the values above are reported first, whether or not the file is there
        _check_report_file(data, report_file, path)
    return cfg


def _check_report_file(data, report_file: str, path: str) -> None:
    """A saved report that is not there is a person's mistake: say so at load, with the key and line,
    rather than when the run opens it."""
    hint = "give the path of a saved ASSET_DATA_REPORT XML file (relative paths are relative to this file)"
    if not os.path.exists(report_file):
        raise yamlconf.error(data, "report_file", f"{report_file} does not exist", path, hint)
    if not os.path.isfile(report_file):
        raise yamlconf.error(data, "report_file", f"{report_file} is not a regular file", path, hint)
    if not os.access(report_file, os.R_OK):
        raise yamlconf.error(data, "report_file", f"{report_file} cannot be read (permission denied)", path,
                             "make it readable by the user running the connector")


def _pull(data, path: str) -> str:
    raw = data.get("pull")
    word = "report" if raw is None or raw == "" else str(raw).strip().lower()
    if word not in PULLS:
        raise yamlconf.error(data, "pull", f"'{str(raw).strip()}' is not report or detections", path,
                             "pull: report (a report template, the default) or pull: detections (the host "
                             "detection API)")
    return word
def _vuln_types(data, path: str) -> tuple[str, ...]:
    raw = data.get("vuln_types")
    if raw is None or raw == "":
        return ("Vuln", "Practice")
    items = raw if isinstance(raw, list) else str(raw).split(",")
    out = []
    for item in items:
        word = str(item).strip().lower()
        if not word:
            continue
        if word not in VULN_TYPES:
            raise yamlconf.error(data, "vuln_types", f"'{str(item).strip()}' is not a report TYPE", path,
                                 "use Vuln, Practice and/or Ig")
        out.append(VULN_TYPES[word])
    if not out:
        raise ConfigError("vuln_types is empty", path=path, key="vuln_types",
                          line=yamlconf.key_line(data, "vuln_types"))
    return tuple(dict.fromkeys(out))

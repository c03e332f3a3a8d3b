"""``settings.yaml`` of censys-qualys (README "censys-qualys"), validated with the key and line in errors.

The original tool silently ran with empty settings when the file was missing or broken, and
its README and code disagreed on ``addHosts``/``addIps``: both spellings are accepted here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .. import yamlconf
from ..errors import ConfigError
from ..logsetup import add_secret, get_logger
from .api import DEFAULT_URL
from .events import MAX_EVENT_ID
from .sync import DEFAULT_MAX_PAGES

log = get_logger()

SECTIONS = {"authentication": ("asm_api_key", "asm_api_url", "allow_plain_http"),
            "run": ("interval", "startup", "idFrom", "trialMode", "addHosts", "excludeHosts", "addIps",
                    "excludeIps", "batchSize", "excludeExpiryDays", "maxPages"),
            "qualys": ("qualys_api_url", "qualys_username", "qualys_password", "proxy", "proxy_username",
                       "proxy_password", "ca_bundle", "verify", "timeout", "allow_plain_http")}


@dataclass
class Settings:
    path: str
    asm_api_key: str
    asm_api_url: str
    interval: int
    startup: bool
    id_from: int
    trial_mode: bool
    add_hosts: bool
    exclude_hosts: bool
    batch_size: int
    qualys_api_url: str
    qualys_username: str
    qualys_password: str
    proxy: str | None = None
    proxy_username: str | None = None
    proxy_password: str | None = None
    verify: bool | str = True
    timeout: float = 120.0
    exclude_expiry_days: int | None = None
    max_pages: int = DEFAULT_MAX_PAGES


def _section(data, name: str, path: str):
    value = data.get(name)
    if value is None:
        from ruamel.yaml.comments import CommentedMap
        return CommentedMap()
    if not isinstance(value, dict):
        raise yamlconf.error(data, name, "expected a section of key: value pairs", path)
    yamlconf.check_keys(value, SECTIONS[name], path)
    return value


def _alias(section, key: str, alias: str, path: str, default: bool) -> bool:
    if key in section and alias in section:
        raise yamlconf.error(section, alias, f"give either {key} or {alias}, not both", path)
    return yamlconf.as_bool(section, alias if alias in section else key, path, default)


def _id_from(run, path: str) -> int:
    """idFrom within the range of event ids (``events.MAX_EVENT_ID``): a larger one would skip every event."""
    value = yamlconf.as_int(run, "idFrom", path, 0, minimum=0)
    if value > MAX_EVENT_ID + 1:
        raise yamlconf.error(run, "idFrom", f"{value} is above the largest logbook event id ({MAX_EVENT_ID})", path)
    return value


def load(path: str) -> Settings:
    data = yamlconf.load_mapping(path, "censys-qualys settings file", example="settings_example.yaml")
    yamlconf.check_keys(data, SECTIONS, path)
    yamlconf.warn_if_readable_by_others(path, log)
    auth, run, qualys = (_section(data, name, path) for name in SECTIONS)
    s = yamlconf.as_str
    key = s(auth, "asm_api_key", path, required=True, env="CENSYS_ASM_API_KEY")
    url = os.environ.get("CENSYS_API_URL") or s(auth, "asm_api_url", path, DEFAULT_URL)
    if os.environ.get("CENSYS_API_URL"):
        try:
            yamlconf.check_url({}, "asm_api_url", url, None, f"for example {DEFAULT_URL}")
        except ConfigError as exc:     # the environment's URL, not the file's: name where it came from
            raise ConfigError("CENSYS_API_URL: " + exc.message.removeprefix("key 'asm_api_url': "), exc.hint) from None
    else:
        yamlconf.check_url(auth, "asm_api_url", url, path, f"for example {DEFAULT_URL}")
    qualys_url = s(qualys, "qualys_api_url", path, required=True).rstrip("/")
    yamlconf.check_url(qualys, "qualys_api_url", qualys_url, path, "for example https://qualysapi.qualys.com")
    proxy = s(qualys, "proxy", path)
    if proxy:
        yamlconf.check_url(qualys, "proxy", proxy, path, "for example https://192.168.1.100:443")
    ca_bundle = s(qualys, "ca_bundle", path)
    if ca_bundle and not os.path.isabs(ca_bundle):
        ca_bundle = os.path.join(os.path.dirname(os.path.abspath(path)), ca_bundle)
    if ca_bundle:
        yamlconf.check_pem_file(qualys, "ca_bundle", path, ca_bundle)
    verify = yamlconf.as_bool(qualys, "verify", path, True)
    yamlconf.check_url_security(auth, "asm_api_url", url, path, log, verify=True,
                                allow_plain=yamlconf.as_bool(auth, yamlconf.ALLOW_PLAIN_HTTP, path, False),
                                source="CENSYS_API_URL" if os.environ.get("CENSYS_API_URL") else None)
    yamlconf.check_url_security(qualys, "qualys_api_url", qualys_url, path, log, verify=verify,
                                allow_plain=yamlconf.as_bool(qualys, yamlconf.ALLOW_PLAIN_HTTP, path, False))
    settings = Settings(
        path=path, asm_api_key=key, asm_api_url=url.rstrip("/"),
        interval=yamlconf.as_int(run, "interval", path, 120, minimum=1, maximum=yamlconf.DAY // 60 * 365),
        startup=yamlconf.as_bool(run, "startup", path, True),
        id_from=_id_from(run, path),
        trial_mode=yamlconf.as_bool(run, "trialMode", path, False),
        add_hosts=_alias(run, "addHosts", "addIps", path, True),
        exclude_hosts=_alias(run, "excludeHosts", "excludeIps", path, False),
        batch_size=yamlconf.as_int(run, "batchSize", path, 500, minimum=1),
        exclude_expiry_days=yamlconf.as_int(run, "excludeExpiryDays", path, None, minimum=1),
        max_pages=yamlconf.as_int(run, "maxPages", path, DEFAULT_MAX_PAGES, minimum=1),
        qualys_api_url=qualys_url,
        qualys_username=s(qualys, "qualys_username", path, required=True),
        qualys_password=s(qualys, "qualys_password", path, required=True, env="QC_QUALYS_PASSWORD"),
        proxy=proxy, proxy_username=s(qualys, "proxy_username", path),
        proxy_password=s(qualys, "proxy_password", path, env="QC_PROXY_PASSWORD"),
        verify=(ca_bundle or True) if verify else False,
        timeout=yamlconf.as_float(qualys, "timeout", path, 120.0, minimum=1, maximum=yamlconf.DAY))
    for secret in (settings.asm_api_key, settings.qualys_password, settings.proxy_password):
        add_secret(secret)
    if not settings.add_hosts and not settings.exclude_hosts:
        log.warning("addHosts and excludeHosts are both off: events are read and the position advances, "
                    "but nothing is sent to Qualys")
    return settings

"""YAML configuration files with errors that name the file, the key and the line.

ruamel.yaml's round-trip loader keeps line numbers on every mapping, which is what lets a
bad value be reported as ``QualysGuard.yaml, line 7: key 'template_id': ...`` instead of a
traceback. Shared by every config file of the toolkit (QualysGuard.yaml, settings.yaml).
"""
from __future__ import annotations

import difflib
import ipaddress
import logging
import math
import os
import stat
import re
from typing import Any, Iterable
from urllib.parse import urlsplit

import httpx
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarint import BinaryInt, HexCapsInt, HexInt, OctalInt, ScalarInt

from .errors import ConfigError
from .logsetup import mask_url
from .smallfile import MAX_CONFIG_BYTES, FileTooLarge, NotPem, read_pem_certificates, read_small
from .secretenv import read_secret

TRUE_WORDS = {"y", "yes", "true", "t", "on", "1"}
FALSE_WORDS = {"n", "no", "false", "f", "off", "0"}


def load_mapping(path: str, what: str = "configuration file", example: str | None = None) -> CommentedMap:
    """Read ``path`` as a YAML mapping; every failure becomes one ConfigError line."""
    try:
        raw = read_small(path, MAX_CONFIG_BYTES)
    except FileTooLarge:
        raise ConfigError(f"{what} {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB",
                          "a configuration file is a few lines; check -plugininfo / --settings names the right "
                          "file") from None
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist",
                          f"create it from {example or 'the example file'} of the qualys-connector "
                          "repository (see the README)") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (byte {exc.start})", path=path) from None
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"not valid YAML: {problem}", "check quoting and indentation there",
                          path=path, line=line) from None
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=path) from None
    except RecursionError:
        raise ConfigError("not valid YAML: lists or mappings nested too deeply",
                          "a configuration file holds key: value pairs, nested a few levels at most",
                          path=path) from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise ConfigError("the file must hold key: value pairs", path=path, line=1)
    return data


def key_line(mapping: Any, key: str) -> int | None:
    """1-based line of ``key`` in a ruamel mapping, or None when unknown."""
    try:
        return mapping.lc.key(key)[0] + 1
    except (AttributeError, KeyError, TypeError):
        try:
            return mapping.lc.line + 1
        except AttributeError:
            return None


def error(mapping: Any, key: str, message: str, path: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, hint, path=path, key=key, line=key_line(mapping, key))


def check_keys(mapping: Any, allowed: Iterable[str], path: str) -> None:
    """Unknown keys are errors: a typo must not silently fall back to a default."""
    allowed = set(allowed)
    for key in mapping:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"unknown key '{key}'", f"{hint}known keys: {', '.join(sorted(allowed))}",
                              path=path, line=key_line(mapping, key))


def as_bool(mapping: Any, key: str, path: str, default: bool) -> bool:
    value = mapping.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise error(mapping, key, f"'{value}' is not a yes/no value", path, "use y, yes, true, n, no or false")


def _number(mapping: Any, key: str, path: str, default, minimum, convert, noun: str, maximum=None):
    value = mapping.get(key)
    if value is None or value == "":
        return default
    try:
        if not written_in_decimal(value):
            raise error(mapping, key, "is not written in decimal digits", path,
                        "YAML reads 0x.., 0o.., 0b.. and 1_000 as other numbers; write plain digits")
        if isinstance(value, bool):
            raise ValueError
        number = convert(str(value).strip())
    except ValueError:
        raise error(mapping, key, f"'{value}' is not {noun}", path) from None
    if isinstance(number, float) and not math.isfinite(number):
        raise error(mapping, key, f"'{value}' is not a finite number", path, "give a number of seconds")
    if minimum is not None and number < minimum:
        raise error(mapping, key, f"{number} is below the minimum of {minimum}", path)
    if maximum is not None and number > maximum:
        # A duration far beyond any use overflows the clock's arithmetic (time_t) mid-run.
        raise error(mapping, key, f"{number} is above the maximum of {maximum}", path)
    return number


DAY = 86_400                    # the longest sensible timeout or poll interval, in seconds
MAX_WAIT = 30 * DAY             # the longest sensible wait for a report (Qualys keeps reports 7 days)


def written_in_decimal(value: Any) -> bool:
    """False for YAML integers written 0x1A, 0o17, 0b11 or 1_000, which YAML reads as numbers:
    an ID or a count is written in decimal digits, and a silent 0x1A → 26 would pick another."""
    if isinstance(value, (HexInt, HexCapsInt, OctalInt, BinaryInt)):
        return False
    return not (isinstance(value, ScalarInt) and getattr(value, "_underscore", None))


def as_int(mapping: Any, key: str, path: str, default: int | None, minimum: int | None = None,
           maximum: int | None = None) -> int | None:
    return _number(mapping, key, path, default, minimum, int, "a whole number", maximum)


def as_float(mapping: Any, key: str, path: str, default: float, minimum: float = 0.0,
             maximum: float | None = None) -> float:
    return _number(mapping, key, path, default, minimum, float, "a number", maximum)


def as_str(mapping: Any, key: str, path: str, default: str | None = None, *,
           required: bool = False, env: str | None = None) -> str | None:
    """A string value; ``env`` names an environment variable (or its ``_FILE`` form) that wins over the file."""
    secret = read_secret(env) if env else None
    if secret is not None:
        return secret
    value = mapping.get(key)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            hint = f"set it in the file{f' or in the environment variable {env} (or {env}_FILE)' if env else ''}"
            raise ConfigError(f"required key '{key}' is missing", hint, path=path,
                              line=key_line(mapping, key) if key in mapping else None)
        return default
    if isinstance(value, (dict, list)):
        raise error(mapping, key, "expected a single value, not a list or mapping", path)
    return str(value).strip() if not isinstance(value, str) else value


def warn_if_readable_by_others(path: str, log: logging.Logger) -> None:
    """Config files hold passwords; say so when others can read them (qualysapi does too)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("%s is readable by other users; it may hold passwords: chmod 600 %s", path, path)


def check_pem_file(mapping: Any, key: str, path: str, file: str) -> None:
    """``ca_bundle``/``fmc_ca``: a PEM file of CA certificates, or one ConfigError saying what it is instead."""
    try:
        read_pem_certificates(file)
    except FileNotFoundError:
        raise error(mapping, key, f"{file} does not exist", path) from None
    except IsADirectoryError:
        raise error(mapping, key, f"{file} is a directory, not a PEM file", path) from None
    except OSError as exc:
        raise error(mapping, key, f"cannot read {file}: {exc.strerror}", path) from None
    except (FileTooLarge, NotPem) as exc:
        raise error(mapping, key, str(exc), path, "give a PEM file of CA certificates "
                    "(-----BEGIN CERTIFICATE-----)") from None


ALLOW_PLAIN_HTTP = "allow_plain_http"


def is_loopback_url(url: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1); names are not resolved."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url_security(mapping: Any, key: str, url: str, path: str, log: logging.Logger, *,
                       allow_plain: bool, verify: bool, warned: set[str] | None = None,
                       source: str | None = None) -> None:
    """Plain http to a host that is not loopback carries the password in clear: refused unless
    ``allow_plain_http`` says the user means it; a warning for every other weak choice, every run.

    ``source`` names an environment variable the URL came from instead of ``key``; ``warned``
    keeps process-multiple (one run, many templates) from repeating a warning per template.
    """
    shown = mask_url(url)
    where = f"{key} {shown}" if source is None else f"{source} {shown}"
    if url.lower().startswith("http://"):
        if is_loopback_url(url):
            message = f"{where} is plain http: fine for the bundled emulators, never for the real service"
        elif not allow_plain:
            hint = (f"use https://, or set {ALLOW_PLAIN_HTTP}: y beside it if you really mean to send "
                    "the password in clear")
            if source is not None:
                raise ConfigError(f"{source}: '{shown}' is plain http to a host that is not loopback: "
                                  "refused, the password would cross the network in clear", hint, path=path)
            raise error(mapping, key, f"'{shown}' is plain http to a host that is not loopback: refused, "
                        "the password would cross the network in clear", path, hint)
        else:
            message = (f"{where} is plain http to a host that is not loopback ({ALLOW_PLAIN_HTTP}: y): "
                       "the password and the data cross the network in clear")
        _warn_once(log, message, warned)
    elif not verify:
        _warn_once(log, f"verify: n: the certificate of {shown} is not checked; anyone on the path can "
                   "pose as it and read the password", warned)


def _warn_once(log: logging.Logger, message: str, warned: set[str] | None) -> None:
    if warned is not None:
        if message in warned:
            return
        warned.add(message)
    log.warning(message)


def check_url(data, key: str, url: str, path: str, example: str) -> None:
    """An http(s) URL httpx can use: no whitespace or control character, a host, a valid port.

    Refused here, with the key and its line, rather than as a bare InvalidURL after the run began
    (QualysGuard.yaml and censys-qualys's settings.yaml alike).
    """
    shown = mask_url(url).encode("unicode_escape").decode("ascii")[:200]
    what = "a proxy URL" if key == "proxy" else "an http(s) URL"
    if not url.startswith(("https://", "http://")):
        raise error(data, key, f"'{shown}' is not {what}", path, example)
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise error(data, key, f"'{shown}' holds a space, newline or control character", path, example)
    try:
        host = httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise error(data, key, f"'{shown}' is not a valid URL ({str(exc)[:100]})", path, example) from None
    if not host:
        raise error(data, key, f"'{shown}' names no host", path, example)
    if ":" not in host and not re.fullmatch(r"[A-Za-z0-9._-]+", host):
        raise error(data, key, f"'{shown}' has no valid host name or address", path, example)

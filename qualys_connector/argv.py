"""Perl Getopt::Long spellings → one canonical form, before click sees the arguments.

Old crontab lines must keep working: ``-server=10.10.10.10``, ``-server 10.10.10.10``,
``--server=…``, and any unique prefix (``-se``, ``-serv``, ``-c=Out.csv``). click knows no
prefix matching and reads ``-c=Out.csv`` as ``-c`` with the value ``=Out.csv``, so we rewrite
every option to ``--name=value`` (or ``--name`` for flags) first. Pure: no I/O.
"""
from __future__ import annotations

from .errors import UsageError

# Options the Perl tools never had. A prefix is matched against the old options first, so an old
# crontab's abbreviation keeps its meaning (``-m`` stays -multiinfo in process-multiple, ``-s`` stays
# ambiguous among -server/-stderr/-syslog, -st stays -stderr, -i stays -ipv6); a new option is reached
# by a prefix no old one has (-sta[tedir], -in[secure], -f[mcca], -me[trics], -su[mmaryjson], -q[uiet], -re[sync]).
NEWER_OPTIONS = frozenset({"metrics", "summaryjson", "statedir", "fmcca", "insecure", "quiet", "resync"})


def normalize(argv: list[str], options: dict[str, bool]) -> list[str]:
    """Rewrite ``argv``; ``options`` maps each long option name to whether it takes a value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out.extend(argv[i - 1:])
            break
        if not arg.startswith("-") or arg == "-":
            out.append(arg)
            continue
        body = arg.lstrip("-")
        name, has_value, value = body.partition("=")
        canonical = resolve(name, options, arg)
        if options[canonical]:
            if not has_value:
                if i >= len(argv):
                    raise UsageError(f"option -{canonical} needs a value", f"write -{canonical}=VALUE")
                value = argv[i]
                i += 1
            out.append(f"--{canonical}={value}")
        else:
            if has_value:
                raise UsageError(f"option -{canonical} takes no value (got {arg!r})")
            out.append(f"--{canonical}")
    return out


def resolve(name: str, options: dict[str, bool], original: str) -> str:
    """Exact name, else the one option ``name`` is a prefix of (case-insensitive, as Getopt)."""
    lowered = name.lower()
    if not lowered:
        raise UsageError(f"unknown option {original!r}")
    if lowered in options:
        return lowered
    matches = sorted(o for o in options if o.startswith(lowered) and o not in NEWER_OPTIONS) or \
        sorted(o for o in options if o.startswith(lowered))
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"unknown option {original!r}")
    raise UsageError(f"option {original!r} is ambiguous: it could be "
                     + ", ".join(f"-{m}" for m in matches), "type more letters of the option")

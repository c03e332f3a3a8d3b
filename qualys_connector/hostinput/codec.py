"""The FMC host input command language: one pure encoder/decoder, no I/O.

The CSV writer, the TLS client and the FMC emulator all go through this module, so what we
write, what we send and what the emulator understands cannot drift apart.

Facts from the host input spec (``docs/host-input.md`` §1): one command per LF-terminated
line; fields are CSV with ``"`` quoting and ``""`` for a literal quote; the server trims
whitespace around separators (Perl ``Text::CSV`` with ``allow_whitespace``); a line may start
with ``SetMap:<name>`` as its first field; fields can never contain a newline.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass

# Field order per command, from the server's own field table (docs/host-input.md §1.2). Unsure there [?]: the
# accepted spellings of the SetSourceType value (any text is passed through), and whether an FMC
# also takes the guide's plural SetValidVulns / SetInvalidVulns (we know only the parser's singular).
FIELDS: dict[str, tuple[str, ...]] = {
    "SetSourceType": ("type",),
    "SetSource": ("source_name", "option"),
    "SetDomain": ("domain",),
    "SetMap": ("map_name",),
    "AddHost": ("ip_address", "mac_address"),
    "DeleteHost": ("ip_address", "mac_address"),
    "SetOS": ("ip_address", "vendor_str", "product_str", "version_str", "vendor_id", "product_id",
              "major", "minor", "revision", "build", "patch", "extension", "device_string",
              "mobile", "jailbroken"),
    "UnsetOS": ("ip_address",),
    "AddService": ("ip_address", "port", "proto", "service", "vendor_str", "version_str",
                   "vendor_id", "product_id", "major", "minor", "revision", "build", "patch",
                   "extension"),
    "SetService": ("ip_address", "port", "proto", "service", "vendor_str", "version_str",
                   "vendor_id", "product_id", "major", "minor", "revision", "build", "patch",
                   "extension"),
    "UnsetService": ("ip_address", "port", "proto"),
    "DeleteService": ("ip_address", "port", "proto"),
    "AddClientApp": ("ip_address", "app_name", "app_type", "version"),
    "DeleteClientApp": ("ip_address", "app_name", "app_type", "version"),
    "DeleteClientAppPayload": ("ip_address", "app_name", "app_type", "version", "payload_type",
                               "payload_id"),
    "AddProtocol": ("ip_address", "mac_address", "proto", "type"),
    "DeleteProtocol": ("ip_address", "mac_address", "proto", "type"),
    "AddHostAttribute": ("attribute_name", "attribute_type"),
    "DeleteHostAttribute": ("attribute_name",),
    "SetAttributeValue": ("ip_address", "attribute", "value"),
    "DeleteAttributeValue": ("ip_address", "attribute"),
    "SetValidVuln": ("ip_address", "port", "proto", "type", "vuln_id"),
    "SetInvalidVuln": ("ip_address", "port", "proto", "type", "vuln_id"),
    "AddFix": ("ip_address", "port", "proto", "fix_id"),
    "RemoveFix": ("ip_address", "port", "proto", "fix_id"),
    "AddScanResult": ("ip_address", "scanner_id", "vuln_id", "port", "proto", "name", "desc",
                      "cve_ids", "bugtraq_ids"),
    "DeleteScanResult": ("ip_address", "scanner_id", "id_list", "port", "proto"),
    "ScanFlush": (),
    "ScanUpdate": (),
}

# Free-text fields are always written quoted, as every working example does.
TEXT_FIELDS = frozenset({"scanner_id", "name", "desc", "cve_ids", "bugtraq_ids", "vendor_str",
                         "product_str", "version_str", "app_name", "app_type", "value",
                         "device_string", "service"})

# Commands that set per-message context; a client repeats them at the top of every DATA
# message, and the server does not count them in "Done processing N commands."
HEADER_COMMANDS = frozenset({"SetSource", "SetSourceType", "SetDomain", "SetMap"})
UNCOUNTED_COMMANDS = frozenset({"SetSource", "SetSourceType", "SetDomain"})

CVE_HEADER = "cve_ids:"
BUGTRAQ_HEADER = "bugtraq_ids:"


class CommandSyntaxError(ValueError):
    """A line is not valid host input CSV (unbalanced quotes, newline in a field...)."""


@dataclass(frozen=True, slots=True)
class Command:
    """One host input command: its name, its positional arguments, an optional SetMap prefix."""

    name: str
    args: tuple[str, ...] = ()
    map_name: str | None = None

    def arg(self, field: str) -> str | None:
        """The argument named ``field`` (per FIELDS), or None when absent."""
        try:
            index = FIELDS[self.name].index(field)
        except (KeyError, ValueError):
            raise KeyError(f"{self.name} has no field {field!r}") from None
        return self.args[index] if index < len(self.args) else None

    @property
    def known(self) -> bool:
        return self.name in FIELDS


# ------------------------------------------------------------------------ id lists
def id_list_field(header: str, ids) -> str:
    """``cve_ids: CVE-1 CVE-2`` — the header is mandatory, ids are whitespace separated."""
    ids = [str(i).strip() for i in ids if str(i).strip()]
    return f"{header} {' '.join(ids)}" if ids else header


def parse_id_list(header: str, text: str | None) -> list[str]:
    """Inverse of id_list_field, as the server reads it: header required, ``CVE-`` stripped."""
    text = (text or "").strip()
    if not text.startswith(header):
        raise CommandSyntaxError(f"can not find the header {header!r}")
    ids = text[len(header):].split()
    if header == CVE_HEADER:
        ids = [i[4:] if i.upper().startswith("CVE-") else i for i in ids]
    return ids


# ------------------------------------------------------------------------ encoder
def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


_NEEDS_QUOTES = re.compile(r'[,"]|^[\s#]|\s$')


def _needs_quotes(value: str) -> bool:
    """Commas, quotes, edge whitespace (the server trims it) or a leading # (a comment)."""
    return _NEEDS_QUOTES.search(value) is not None


def encode_field(value: str, text: bool) -> str:
    if "\n" in value or "\r" in value:
        raise CommandSyntaxError("a host input field may not contain a newline")
    return _quote(value) if text or _needs_quotes(value) else value


def encode(command: Command) -> str:
    """The command as one CSV line, without the trailing newline."""
    parts = []
    if command.map_name is not None:
        parts.append(encode_field(f"SetMap:{command.map_name}", False))
    parts.append(encode_field(command.name, False))
    if command.args:
        parts.append(encode_args(command.name, command.args))
    return ",".join(parts)


def encode_args(name: str, args, first: int = 0) -> str:
    """``args`` as the CSV of fields ``first``, ``first + 1``, ... of command ``name``.

    Lets a caller that writes millions of similar lines encode the part that repeats once
    (e.g. the title, description and id lists of a QID) and still go through this codec.
    """
    names = FIELDS.get(name, ())
    return ",".join(encode_field(value, first + i < len(names) and names[first + i] in TEXT_FIELDS)
                    for i, value in enumerate(args))


def encode_line(command: Command) -> bytes:
    """The command as UTF-8 bytes with its LF, ready for a file or a DATA message."""
    return (encode(command) + "\n").encode("utf-8")


# ------------------------------------------------------------------------ decoder
# One field and the comma that ends it (the line gets one appended): a quoted field ("" is a
# literal quote, blanks may follow the closing quote) or an unquoted one without quotes, both
# after optional blanks. Where no field starts, the last group takes the rest of the line, which
# marks the line as bad. findall walks a whole line in C; a closing quote must end a run of
# quotes of odd length, as for the server's reader, so a line has one reading or none.
_FIELD = re.compile(r'[ \t]*(?:"([^"]*(?:""[^"]*)*)"[ \t]*|([^,"]*)),|(.+)')
_QUOTED = re.compile(r'"((?:[^"]|"")*)"(?!")')
_BLANKS = re.compile(r"[ \t]*")


def split_fields(line: str) -> list[str]:
    """CSV fields of one line, trimming whitespace around separators like the server does."""
    line = line.rstrip("\r\n")
    if "\n" in line or "\r" in line:
        raise CommandSyntaxError("a host input line may not contain a newline")
    if '"' not in line:
        return [field.strip(" \t") for field in line.split(",")]
    rows = _FIELD.findall(line + ",")
    if rows[-1][2]:
        raise CommandSyntaxError(_why_not_csv(line))
    return [quoted.replace('""', '"') if quoted else plain.rstrip(" \t") for quoted, plain, _ in rows]


def good_line_pattern(possessive: bool) -> re.Pattern:
    """A whole line that split_fields accepts (for lines known to hold no CR or LF).

    The fields are those of _FIELD. Possessive quantifiers (Python 3.11+) accept exactly the same
    lines, since every field has one reading; they only spare the engine its backtracking. An
    unquoted field also stops at LF, so that in a block (block_pattern) it ends with its line.
    """
    plus = "+" if possessive else ""
    field = f'[ \\t]*{plus}(?:"[^"]*{plus}(?:""[^"]*{plus})*{plus}"[ \\t]*{plus}|[^,"\\n]*{plus})'
    return re.compile(f"{field}(?:,{field})*{plus}")


_POSSESSIVE = sys.version_info >= (3, 11)


def block_pattern(names: tuple[str, ...]) -> re.Pattern:
    """Whole LF-ended lines, all of which check_lines may count in bulk, as one bytes pattern.

    Each line starts with an ASCII letter (no blank line, comment, leading blank or quoted name),
    has no SetMap: prefix, and does not start with one of ``names`` followed by a blank or the
    line end (so that counting "<LF>name," finds every line of that command); then the fields
    of good_line_pattern. Unquoted fields and blanks stop at LF; quoted fields do not, because the
    class [^"] runs several times faster in the regex engine than [^"\n]: check_lines refuses
    a quoted field that runs on over a line end with a separate, cheap test.
    """
    odd = "".join(f"(?!{re.escape(name)}[ \\t\\n])" for name in names)
    line = f"(?=[A-Za-z])(?!SetMap:){odd}(?:{good_line_pattern(_POSSESSIVE).pattern})\\n"
    return re.compile(f"(?:{line})*{'+' if _POSSESSIVE else ''}".encode("ascii"))


_BLOCKS: dict[tuple[str, ...], re.Pattern] = {}
_ALL_BUT_QUOTES_AND_LF = bytes(range(256)).translate(None, b'"\n')
_EVEN_QUOTES = re.compile(rb'(?:(?:"")*+\n)*+' if _POSSESSIVE else rb'(?:(?:"")*\n)*')


def check_lines(block: bytes, names: tuple[str, ...] = ()) -> list[int] | None:
    """Check a block of whole UTF-8 lines at once; [commands, lines of each of ``names``], or None.

    For files of millions of lines: one compiled pattern matches the whole block in C (no line
    split, no fields built) and the commands are counted by searching the block. None means
    "look line by line with decode": a bad line, and also lines this shortcut does not count
    (comments, blank lines, CR, a SetMap: prefix, a name that is quoted or has blanks before or
    after it). The block must be valid UTF-8; the caller checks that (bytes of multi-byte
    characters are never ASCII, so they cannot pass for a quote, comma or LF here).

    A quoted field that runs on over an LF is the one thing the block pattern lets through; it
    always leaves an odd number of quotes on the line where it opens (every field before it has
    an even number, it opens with one and doubles the rest), while every good line has an even
    number. Hence the second test, on the block with all but its quotes and LFs deleted.
    """
    if not block.endswith(b"\n") or b"\r" in block:
        return None
    pattern = _BLOCKS.get(names)
    if pattern is None:
        pattern = _BLOCKS[names] = block_pattern(names)
    if pattern.fullmatch(block) is None:
        return None
    skeleton = block.translate(None, _ALL_BUT_QUOTES_AND_LF)
    if _EVEN_QUOTES.fullmatch(skeleton) is None:
        return None
    counts = [skeleton.count(b"\n")]
    for name in names:
        start = name.encode("ascii") + b","
        counts.append(block.count(b"\n" + start) + block.startswith(start))
    return counts


def _why_not_csv(line: str) -> str:
    """The reason a line that _FIELD refused is not host input CSV (only ever called for bad lines)."""
    i, n = 0, len(line)
    while i <= n:
        i = _BLANKS.match(line, i).end()
        if line.startswith('"', i):
            quoted = _QUOTED.match(line, i)
            if quoted is None:
                return "unterminated quoted field"
            i = _BLANKS.match(line, quoted.end()).end()
            if i < n and line[i] != ",":
                return f"unexpected character {line[i]!r} after a quoted field"
        else:
            comma = line.find(",", i)
            end = n if comma < 0 else comma
            if '"' in line[i:end]:
                return "a quote inside an unquoted field"
            i = end
        i += 1
    return "not a valid host input line"   # unreachable while _FIELD and this walk agree


def is_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def decode(line: str) -> Command | None:
    """One line back into a Command; None for blank lines and ``#`` comments."""
    if is_comment(line):
        return None
    fields = split_fields(line)
    map_name = None
    if fields[0].startswith("SetMap:"):
        map_name = fields[0][len("SetMap:"):]
        fields = fields[1:]
        if not fields:
            raise CommandSyntaxError("SetMap: prefix without a command")
    return Command(fields[0], tuple(fields[1:]), map_name)

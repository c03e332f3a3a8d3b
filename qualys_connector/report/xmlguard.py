"""The one boundary between lxml and the rest: safe parser options, hostile-DTD refusal, error translation.

Every lxml exception raised while reading a report is turned into ``ReportFormatError`` here,
with a one-line message naming the line, so no traceback ever reaches the user.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

from lxml import etree

from ..errors import InputFileError, QualysError, ReportFormatError
from ..text import clean_text

# Never resolve entities, never load the external DTD Qualys names in its DOCTYPE, never touch
# the network; huge_tree because RESULT texts can exceed libxml2's default node size limit
# (libxml2 keeps its entity-amplification guard even with huge_tree, and we refuse entity
# declarations anyway, see inspect_root).
PARSER_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)

CUT_HINT = "the download was cut short or the file is damaged; run again"
HOSTILE_HINT = "the file is not a genuine Qualys report; nothing was sent"


@contextmanager
def translated(path: str) -> Iterator[None]:
    """Turn lxml and I/O errors met while reading ``path`` into the toolkit's errors."""
    try:
        yield
    except etree.XMLSyntaxError as exc:
        raise syntax_error(exc, path) from None
    except etree.LxmlError as exc:   # parser internals (rare): still bad input, not a bug of ours
        raise ReportFormatError(f"the report could not be parsed: {_first_line(str(exc))}", CUT_HINT) from None
    except OSError as exc:
        raise InputFileError(f"cannot read the report {path}: {exc.strerror or exc}",
                             "check the path and its permissions") from None


_UNDECLARED = ("ERR_UNDECLARED_ENTITY", "WAR_UNDECLARED_ENTITY")
_ENTITY_REF = re.compile(rb"&([A-Za-z_][A-Za-z0-9_.-]{0,40});")
_PREDEFINED = {b"lt", b"gt", b"amp", b"apos", b"quot"}


def undeclared_entity(error_log, path: str | None) -> ReportFormatError | None:
    """The error for an entity reference nothing declares, when ``error_log`` holds one for ``path``."""
    for entry in error_log or ():
        if entry.type_name in _UNDECLARED and (path is None or entry.filename in (path, os.fspath(path))):
            name = re.search(r"'([^']*)'", entry.message or "")
            return _entity_error(name.group(1) if name else "?", entry.line)
    return None


def _entity_error(name: str, line: int | None) -> ReportFormatError:
    where = f" at line {line}" if line else ""
    return ReportFormatError(f"the report uses the undeclared entity &{name[:40]};{where}",
                             "Qualys reports use none; " + HOSTILE_HINT)


def _entity_before_root(path: str | None) -> ReportFormatError | None:
    """libxml2 reports an entity reference before the root element as "Start tag expected"."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except (OSError, TypeError):
        return None
    before_root = head.split(b"<", 1)[0] if not head.lstrip().startswith(b"<") else b""
    match = _ENTITY_REF.search(before_root) or _ENTITY_REF.search(head)
    if match and match.group(1) not in _PREDEFINED:
        return _entity_error(match.group(1).decode("ascii"), head[:match.start()].count(b"\n") + 1)
    return None


def syntax_error(exc: etree.XMLSyntaxError, path: str | None = None) -> ReportFormatError:
    entity = undeclared_entity(getattr(exc, "error_log", None), path)
    if entity is None and exc.msg and exc.msg.startswith(("Start tag expected", "Document is empty")):
        entity = _entity_before_root(path)
    if entity is not None:
        return entity
    line = getattr(exc, "lineno", None)
    where = f" at line {line}" if line else ""
    return ReportFormatError(f"the report is not complete, well-formed XML{where}: {_first_line(exc.msg)}",
                             CUT_HINT)


def _first_line(message: str | None) -> str:
    text = (message or "syntax error").strip().split("\n")[0]
    return text[:200]


def inspect_root(path: str) -> str:
    """Tag of the root element, read from the first chunk only; refuses entity declarations.

    Qualys reports declare no entities (their DOCTYPE only names an external DTD), so any
    ENTITY in the internal subset is an XML bomb or an XXE attempt: refused before a single
    entity is expanded. lxml reports the declarations whatever the file's encoding, which a
    byte search for ``<!ENTITY`` would not.
    """
    with translated(path):
        if os.path.getsize(path) == 0:
            raise ReportFormatError("the report is empty (0 bytes)", CUT_HINT)
        with open(path, "rb") as fh:
            for _, root in etree.iterparse(fh, events=("start",), **PARSER_OPTIONS):
                break
            else:  # pragma: no cover - libxml2 raises "Document is empty" before this
                raise ReportFormatError("the report holds no XML element", CUT_HINT)
            dtd = root.getroottree().docinfo.internalDTD
            if dtd is not None and next(iter(dtd.iterentities()), None) is not None:
                raise ReportFormatError("the report declares XML entities in its DOCTYPE; refused without "
                                        "expanding them", HOSTILE_HINT)
            return root.tag if isinstance(root.tag, str) else "?"


def simple_return_error(path: str) -> QualysError:
    """Qualys answered with its error envelope (SIMPLE_RETURN/RESPONSE/{CODE, TEXT}) instead of a report."""
    with translated(path):
        parser = etree.XMLParser(**PARSER_OPTIONS)
        root = etree.parse(path, parser).getroot()
    code = clean_text(root.findtext("RESPONSE/CODE")) or None
    text = clean_text(root.findtext("RESPONSE/TEXT")) or "no TEXT given"
    return QualysError(f"Qualys returned an error instead of the report: CODE {code or '?'}: {text}",
                       "see the Qualys error code; run again later if it is a limit", code=code, text=text)

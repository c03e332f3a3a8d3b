"""Free text made fit for a host input field: one line, and optionally plain ASCII.

Shared by the report parser (titles, threats, OS names) and the command codec's callers, so
text is cleaned the same way wherever it enters.
"""
from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")


_ODD_SPACE = re.compile(r"[^\S ]|  ")


def clean_text(text: str | None) -> str:
    """Collapse all whitespace (newlines included) to single spaces; fields may not hold newlines."""
    if not text:
        return ""
    if _ODD_SPACE.search(text) is None:     # the common case: nothing to collapse
        return text.strip()
    return _WS.sub(" ", text).strip()


# The stock FMC host input module did not handle UTF-8 (docs/host-input.md §1.1: a third party had to
# patch it), and the SDK's plugins strip non-ASCII. Whether a current FMC copes is unknown [?], so
# free text from reports is folded to ASCII by default: accents dropped, typographic punctuation
# replaced by its plain form, anything else removed.
_PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u00ab": '"',
                              "\u00bb": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
                              "\u2014": "-", "\u2015": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ",
                              "\u2022": "*", "\u00ae": "(R)", "\u00a9": "(C)", "\u2122": "(TM)"})


def ascii_text(text: str | None) -> str:
    """``clean_text`` folded to ASCII, for FMCs whose host input module does not handle UTF-8."""
    text = clean_text(text)
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text.translate(_PUNCTUATION))
    return clean_text(text.encode("ascii", "ignore").decode("ascii"))

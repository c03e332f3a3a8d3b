"""The server's answer to one DATA message: error lines and "Done processing N commands."."""
from __future__ import annotations

import re
from dataclasses import dataclass

_DONE = re.compile(r"^Done processing (\d+) commands\.\s*$")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server said about one DATA message: error lines and the processed count."""

    errors: tuple[str, ...]
    processed: int | None   # None when the "Done processing" line is missing

    @property
    def ok(self) -> bool:
        return not self.errors and self.processed is not None


def format_reply(errors, processed: int) -> str:
    lines = [e for e in errors] + [f"Done processing {processed} commands."]
    return "\n".join(lines) + "\n"


def parse_reply(text: str) -> Reply:
    errors, processed = [], None
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _DONE.match(line.strip())
        if match:
            processed = int(match.group(1))
        else:
            errors.append(line.strip())
    return Reply(tuple(errors), processed)

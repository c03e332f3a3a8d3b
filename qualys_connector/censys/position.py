"""Where the last run stopped: ``{"next_id": N}``, written atomically (temp file, fsync, rename)."""
from __future__ import annotations

import json
import os

from ..errors import ConfigError
from ..privatecopy import replace_atomically
from .events import MAX_EVENT_ID

FILENAME = "censys-qualys.position.json"


class Position:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, FILENAME)

    def load(self) -> int | None:
        try:
            with open(self.path) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"the saved position {self.path} is unreadable ({exc})",
                              "fix or delete it, or run with --reset to start from idFrom") from None
        value = data.get("next_id") if isinstance(data, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_EVENT_ID + 1:
            raise ConfigError(f"the saved position {self.path} holds no valid next_id",
                              "delete it or run with --reset")
        return value

    def save(self, next_id: int) -> None:
        try:
            self._save(next_id)
        except OSError as exc:
            raise ConfigError(f"cannot save the logbook position in {self.state_dir}: {exc.strerror}",
                              "make the state directory writable; the batch is done again next run") from None

    def _save(self, next_id: int) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        replace_atomically(self.path, lambda fh: fh.write(json.dumps({"next_id": int(next_id)}).encode()))

"""What the core asks of an input plugin, and what a plugin gets to work with.

The core (``pipeline``) calls plugins only through ``InputPlugin`` and never asks for a plugin's
name: what differs between plugins (a configuration to check early, the key of the run lock) is
a call on the protocol. The core never imports ``input_plugins`` either: the command-line edge
finds plugins and hands its lookup in with ``use_plugins``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Protocol, Sequence, runtime_checkable

from .errors import Interrupted
from .hostinput.lineblocks import CheckedFile
from .progress import NO_PROGRESS, Progress
from .runinfo import Summary


@dataclass
class Job:
    """What a plugin gets: where to write, what to count, how to notice a stop request."""

    plugininfo: str | None
    out: BinaryIO
    summary: Summary
    log: object
    stop: threading.Event
    template_id: str | None = None
    config: object = None
    sleep: Callable[[float], None] = time.sleep
    # Longest line a plugin may write, or None: when sending, delivery shortens lines to the
    # MAX_SIZE the FMC announces; with -csvfile there is no FMC to ask.
    max_size: int | None = None
    statedir: str | None = None       # -statedir (None: statedir.state_dir's default)
    dry_run: bool = False             # -csvfile: nothing is sent, no state or cache is written
    progress: Progress = NO_PROGRESS     # live display of the long phases (a no-op unless at a terminal)
    # Keeping the FMC current (clearing.Clearing), or None: a plugin that writes scan results
    # calls clearing.sent(ip) for every host it sent results for and clearing.absent(ip) for
    # every host of its source without anything to send.
    clearing: object = None
    resync: bool = False              # -resync: a source that pulls changes only pulls everything this run
    # State a plugin may write only once the FMC acknowledged everything (a cache): callables the
    # core calls after the delivery, before the delivery record is committed; never on a dry run
    # or a failed run.
    after_delivery: list = field(default_factory=list)
    # Set by a plugin that wrote nothing to ``out`` but checked a whole file to send as it is
    # (never in a dry run, whose file is written through the spool).
    checked_file: CheckedFile | None = None

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted("stopped on request")


@runtime_checkable
class InputPlugin(Protocol):
    """An input plugin (a module of ``input_plugins/`` satisfies it as it is)."""

    NAME: str                                   # as the user spells it on the command line
    SUMMARY: str                                # one line for the version screen
    PARAMETERS: Sequence[tuple[str, str]]       # what -plugininfo means and which keys it reads
    SHORTEN: bool                               # may delivery shorten its lines to fit MAX_SIZE?

    def default_plugininfo(self) -> str | None:
        """The -plugininfo used when none is given."""

    def load_config(self, plugininfo: str | None, template_id: str | None) -> object | None:
        """Read and check the configuration before any long work starts; None if there is none."""

    def lock_key(self, plugininfo: str | None) -> str:
        """What two runs must not work on at once (an absolute path): the run lock's key."""

    def produce(self, job: Job) -> None:
        """Write encoded host input lines to ``job.out``, counting into ``job.summary``."""

    # Optional, not part of the protocol (a plugin without it never clears anything):
    #   clear_scope(config) -> deliveryrecord.ClearScope | None
    # the scanner its results are written under, and how far the core may clear them.


_find: Callable[[str], InputPlugin] | None = None


def use_plugins(find: Callable[[str], InputPlugin]) -> None:
    """The edge hands in its plugin lookup (name -> plugin; raises UsageError for unknown names)."""
    global _find
    _find = find


def find_plugin(name_or_plugin: str | InputPlugin) -> InputPlugin:
    if not isinstance(name_or_plugin, str):
        return name_or_plugin
    if _find is None:
        raise RuntimeError("no input plugins were handed in: the edge calls plugin.use_plugins() first")
    return _find(name_or_plugin)

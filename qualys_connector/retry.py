"""One retry policy value for every HTTP client of the tools, in the manner of urllib3's ``Retry``.

A ``Retry`` says WHAT is retried (``Rule``: HTTP statuses, the API's own error codes,
exceptions) and HOW LONG to wait (a fixed back-off per rule, or the wait the server asks for
in Retry-After / X-RateLimit-ToWait-Sec, capped, never below ``min_wait`` so a zero or
negative value cannot cause a retry storm, and never past ``deadline``). It is immutable:
``increment`` returns the next value, with the wait to take, or raises ``RetryExhausted``;
``sleep`` takes that wait through the injected sleep (the tools pass ``edge.sleeper``, which
ends at once on SIGTERM; tests pass a fake clock). Which answer is which rule is protocol
knowledge and stays in the client; the counting and waiting live here, once.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Rule:
    """One kind of retryable failure.

    A rule matches when the status is in ``statuses`` (any status if empty), the API code is
    in ``codes`` (any code if empty; ``None`` in the set stands for "no code"), and, for a
    failure without an answer, the exception is one of ``exceptions``. Rules sharing a
    ``name`` share one count. ``backoff`` lists the fixed waits, one per retry; a rule with
    ``asked=True`` waits what the server asks instead (``default_wait`` when it says nothing),
    at most ``attempts`` times.
    """

    name: str
    statuses: frozenset = frozenset()
    codes: frozenset = frozenset()
    exceptions: tuple[type[BaseException], ...] = ()
    backoff: tuple[float, ...] = ()
    asked: bool = False
    attempts: int = 0
    default_wait: float = 60.0
    jitter: bool = False

    @property
    def limit(self) -> int:
        return self.attempts if self.asked else len(self.backoff)

    def matches(self, status: int | None = None, code=None, exc: BaseException | None = None) -> bool:
        if exc is not None:
            return bool(self.exceptions) and isinstance(exc, self.exceptions)
        if self.exceptions and not (self.statuses or self.codes):
            return False
        if self.statuses and status not in self.statuses:
            return False
        return not self.codes or code in self.codes


class RetryExhausted(Exception):
    """No retry is left for ``rule`` (or the asked ``wait`` would end after the deadline).

    Internal: the client turns it into its own error, which names the API and what to do.
    """

    def __init__(self, rule: Rule, wait: float, past_deadline: bool):
        super().__init__(f"{rule.name}: no retry left (wait {wait:g} s)")
        self.rule, self.wait, self.past_deadline = rule, wait, past_deadline


def _no_jitter() -> float:
    return 0.0


@dataclass(frozen=True)
class Retry:
    rules: tuple[Rule, ...] = ()
    max_asked_wait: float = 3600.0        # a Retry-After above this is cut to it
    min_wait: float = 1.0                 # a zero or negative Retry-After waits this long
    deadline: float | None = None         # a clock() value no asked wait may end after
    wait: float = 0.0                     # the wait ``increment`` chose, as logged
    spread: float = 0.0                   # jitter added to it, so parallel runs do not come back in step
    counts: tuple[tuple[str, int], ...] = ()
    sleeper: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    jitter: Callable[[], float] = field(default=_no_jitter, compare=False, repr=False)

    def match(self, status: int | None = None, code=None, exc: BaseException | None = None) -> Rule | None:
        """The first rule that retries this answer (or exception); None: it is final."""
        for rule in self.rules:
            if rule.matches(status, code, exc):
                return rule
        return None

    def count(self, name: str) -> int:
        return dict(self.counts).get(name, 0)

    def asked_wait(self, asked: float | None, rule: Rule | None = None) -> float:
        """What the server asked for, as a wait we take: capped, never below ``min_wait``."""
        if asked is None:
            asked = rule.default_wait if rule is not None else self.min_wait
        return min(max(float(asked), self.min_wait), self.max_asked_wait)

    def fits(self, wait: float) -> bool:
        """Whether a wait of ``wait`` seconds ends before the deadline."""
        return self.deadline is None or wait <= self.deadline - self.clock()

    def increment(self, rule: Rule, asked: float | None = None) -> "Retry":
        """The policy after one more failure of ``rule``; raises ``RetryExhausted`` when none is left."""
        used = self.count(rule.name)
        if rule.asked:
            wanted = max(float(rule.default_wait if asked is None else asked), self.min_wait)
            if not self.fits(wanted):       # judged on what was asked, before the cap
                raise RetryExhausted(rule, wanted, past_deadline=True)
            wait = min(wanted, self.max_asked_wait)
        else:
            wait = rule.backoff[used] if used < len(rule.backoff) else 0.0
        if used >= rule.limit:
            raise RetryExhausted(rule, wait, past_deadline=False)
        counts = dict(self.counts)
        counts[rule.name] = used + 1
        return dataclasses.replace(self, wait=wait, spread=self.jitter() if rule.jitter else 0.0,
                                   counts=tuple(counts.items()))

    def sleep(self, seconds: float | None = None) -> None:
        """Take the wait ``increment`` chose (or ``seconds``) through the one interruptible sleep."""
        self.sleeper(self.wait + self.spread if seconds is None else seconds)

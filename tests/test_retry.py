"""retry.Retry: one immutable policy value; what is retried, how long it waits, when it gives up."""
import httpx
import pytest

from qualys_connector.retry import Retry, RetryExhausted, Rule

BUSY = Rule("busy", statuses=frozenset({409}), codes=frozenset({None, "1960"}), backoff=(15, 30))
RATE = Rule("rate", statuses=frozenset({429}), asked=True, attempts=3, default_wait=60.0, jitter=True)
DOWN = Rule("down", exceptions=(httpx.TransportError,), backoff=(2,))


class FakeTime:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def policy(**kw):
    t = FakeTime()
    return Retry((RATE, BUSY, DOWN), sleeper=t.sleep, clock=t.clock, jitter=lambda: 0.5, **kw), t


def test_rules_say_what_is_retried():
    retry, _ = policy()
    assert retry.match(status=409, code="1960") is BUSY and retry.match(status=409, code=None) is BUSY
    assert retry.match(status=409, code="999") is None, "another CODE on a 409 is final"
    assert retry.match(status=429, code="anything") is RATE
    assert retry.match(status=500) is None
    assert retry.match(exc=httpx.ConnectError("refused")) is DOWN
    assert retry.match(exc=ValueError("bug")) is None


def test_increment_returns_a_new_value_and_leaves_the_old_one_alone():
    retry, _ = policy()
    first = retry.increment(BUSY)
    second = first.increment(BUSY)
    assert (first.wait, second.wait) == (15, 30)
    assert retry.count("busy") == 0 and first.count("busy") == 1 and second.count("busy") == 2
    with pytest.raises(RetryExhausted) as info:
        second.increment(BUSY)
    assert info.value.rule is BUSY and not info.value.past_deadline


def test_rules_count_apart():
    retry, _ = policy()
    retry = retry.increment(BUSY).increment(RATE, 5).increment(BUSY)
    assert retry.count("busy") == 2 and retry.count("rate") == 1


def test_an_asked_wait_is_honoured_capped_and_jittered():
    retry, t = policy(max_asked_wait=100)
    step = retry.increment(RATE, 8)
    assert step.wait == 8 and step.spread == 0.5
    step.sleep()
    assert t.sleeps == [8.5]
    assert retry.increment(RATE, 5000).wait == 100, "capped"
    assert retry.increment(RATE, None).wait == 60, "the rule's default when the server says nothing"


@pytest.mark.parametrize("asked", [0, -30, -0.5])
def test_a_zero_or_negative_retry_after_waits_the_minimum_not_zero(asked):
    retry, _ = policy(min_wait=1.0)
    assert retry.increment(RATE, asked).wait == 1.0


def test_asked_waits_run_out_after_their_attempts():
    retry, _ = policy()
    for _ in range(3):
        retry = retry.increment(RATE, 1)
    with pytest.raises(RetryExhausted):
        retry.increment(RATE, 1)


def test_an_asked_wait_past_the_deadline_is_not_taken():
    retry, t = policy(deadline=10.0)
    assert retry.fits(10) and not retry.fits(11)
    with pytest.raises(RetryExhausted) as info:
        retry.increment(RATE, 20)
    assert info.value.past_deadline and info.value.wait == 20
    t.now = 9.0
    with pytest.raises(RetryExhausted):
        retry.increment(RATE, 2)


def test_sleep_goes_through_the_injected_sleep():
    retry, t = policy()
    retry.increment(BUSY).sleep()
    retry.sleep(7)
    assert t.sleeps == [15, 7]


def test_a_default_policy_retries_nothing():
    assert Retry().match(status=503) is None

"""Pacing: quota snapshots with a reservation ledger, cooldowns, rpm/tpm buckets, spread wake-ups."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qroute.providers.base import RateLimitSnapshot
from qroute.resilience.pacing import (
    BOOKING_GRACE_S,
    LEDGER_MEMORY_S,
    MAX_SPREAD_S,
    ProviderLimiter,
    RoutePacer,
    TokenBucket,
    spread_wakeup,
)

T0 = 1_800_000_000.0


def snap(
    *,
    requests: int | None = None,
    requests_reset: float | None = None,
    tokens: int | None = None,
    tokens_reset: float | None = None,
) -> RateLimitSnapshot:
    return RateLimitSnapshot(
        remaining_requests=requests,
        requests_reset_at=requests_reset,
        remaining_tokens=tokens,
        tokens_reset_at=tokens_reset,
    )


class TestSnapshot:
    """The provider's remaining quota holds requests back until its reset."""

    def test_no_snapshot_means_go(self) -> None:
        """A route nobody has heard about is available now."""
        assert RoutePacer().available_at(T0, 1_000) == T0

    def test_requests_used_up_waits_for_reset(self) -> None:
        """remaining_requests = 0 with a future reset: wait for the reset."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=0, requests_reset=T0 + 7), sent_at=T0)
        assert pacer.available_at(T0 + 1, 10) == T0 + 7

    def test_past_reset_constrains_nothing(self) -> None:
        """Once the reset has passed the old numbers no longer apply."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=0, requests_reset=T0 + 7), sent_at=T0)
        assert pacer.available_at(T0 + 7, 10) == T0 + 7
        assert pacer.available_at(T0 + 8, 10) == T0 + 8

    def test_too_few_tokens_waits_for_token_reset(self) -> None:
        """Fewer tokens left than the request needs: wait for the token reset."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=50, tokens=900, tokens_reset=T0 + 3), sent_at=T0)
        assert pacer.available_at(T0, 800) == T0
        assert pacer.available_at(T0, 1_000) == T0 + 3

    def test_unknown_reset_does_not_block(self) -> None:
        """remaining = 0 without a reset time: nothing to wait for here (429s cool down instead)."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=0, tokens=0), sent_at=T0)
        assert pacer.available_at(T0, 10) == T0

    def test_ledger_counts_reservations_after_the_snapshot(self) -> None:
        """With 3 requests left, the 4th reservation made after the snapshot must wait."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=3, requests_reset=T0 + 20), sent_at=T0)
        for i in range(3):
            assert pacer.available_at(T0 + 1, 10) == T0 + 1
            pacer.reserve(T0 + 1 + i * 0.01, 10)
        assert pacer.available_at(T0 + 1, 10) == T0 + 20

    def test_ledger_counts_tokens(self) -> None:
        """Reserved tokens are subtracted from the reported remaining tokens."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(tokens=1_000, tokens_reset=T0 + 5), sent_at=T0)
        pacer.reserve(T0 + 0.5, 600)
        assert pacer.available_at(T0 + 0.6, 400) == T0 + 0.6
        assert pacer.available_at(T0 + 0.6, 401) == T0 + 5

    def test_snapshot_absorbs_reservations_sent_before_it(self) -> None:
        """A newer snapshot already counts requests sent before its own; later ones stay in the ledger."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=2, requests_reset=T0 + 20), sent_at=T0)
        pacer.reserve(T0 + 1, 10)
        pacer.reserve(T0 + 2, 10)
        assert pacer.available_at(T0 + 2, 10) == T0 + 20
        # The response to the request sent at T0+1 arrives: 1 left at that time,
        # and the reservation at T0+2 is not in the server's count yet.
        pacer.observe_snapshot(snap(requests=1, requests_reset=T0 + 20), sent_at=T0 + 1)
        assert pacer.available_at(T0 + 3, 10) == T0 + 20
        pacer.observe_snapshot(snap(requests=1, requests_reset=T0 + 20), sent_at=T0 + 2)
        assert pacer.available_at(T0 + 3, 10) == T0 + 3

    def test_stale_snapshot_is_ignored(self) -> None:
        """A snapshot from an earlier-sent request never replaces a fresher one."""
        pacer = RoutePacer()
        assert pacer.observe_snapshot(snap(requests=0, requests_reset=T0 + 30), sent_at=T0 + 5)
        assert not pacer.observe_snapshot(snap(requests=100, requests_reset=T0 + 10), sent_at=T0 + 1)
        assert pacer.available_at(T0 + 6, 10) == T0 + 30
        assert pacer.snapshot is not None
        assert pacer.snapshot.remaining_requests == 0

    @given(st.permutations(list(range(8))))
    def test_arrival_order_does_not_matter(self, order: list[int]) -> None:
        """Whatever order snapshots arrive in, the one sent last is kept."""
        pacer = RoutePacer()
        for i in order:
            pacer.observe_snapshot(snap(requests=i, requests_reset=T0 + 60 + i), sent_at=T0 + i)
        assert pacer.snapshot == snap(requests=7, requests_reset=T0 + 67)

    def test_ledger_memory_is_bounded(self) -> None:
        """Reservations older than the memory horizon are forgotten even without snapshots."""
        pacer = RoutePacer()
        pacer.observe_snapshot(snap(requests=1, requests_reset=T0 + 10 * LEDGER_MEMORY_S), sent_at=T0)
        pacer.reserve(T0 + 1, 10)
        assert pacer.available_at(T0 + 2, 10) > T0 + 2
        pacer.reserve(T0 + 2 + LEDGER_MEMORY_S, 10)
        assert pacer.available_at(T0 + 3 + LEDGER_MEMORY_S, 10) > T0 + 3 + LEDGER_MEMORY_S
        pacer.observe_snapshot(snap(requests=2, requests_reset=T0 + 10 * LEDGER_MEMORY_S), sent_at=T0 + 1)
        assert pacer.available_at(T0 + 3 + LEDGER_MEMORY_S, 10) == T0 + 3 + LEDGER_MEMORY_S


class TestCooldown:
    """A cooldown holds every request back until it ends, and only moves forward."""

    def test_cooldown_blocks_until_end(self) -> None:
        """Nothing goes before the cooldown ends."""
        pacer = RoutePacer()
        pacer.cool_down(T0 + 12)
        assert pacer.available_at(T0, 1) == T0 + 12
        assert pacer.available_at(T0 + 13, 1) == T0 + 13

    def test_earlier_cooldown_does_not_shorten(self) -> None:
        """A shorter retry-after from a concurrent 429 does not cut the longer one."""
        pacer = RoutePacer()
        pacer.cool_down(T0 + 12)
        pacer.cool_down(T0 + 3)
        assert pacer.available_at(T0, 1) == T0 + 12

    def test_latest_constraint_wins(self) -> None:
        """Cooldown and snapshot reset combine to the later of the two."""
        pacer = RoutePacer()
        pacer.cool_down(T0 + 4)
        pacer.observe_snapshot(snap(requests=0, requests_reset=T0 + 9), sent_at=T0)
        assert pacer.available_at(T0, 1) == T0 + 9


class TestTokenBucket:
    """A continuously refilling bucket that may go into debt."""

    def test_full_at_start_then_paced(self) -> None:
        """Capacity goes at once; after that one unit per 1/rate seconds."""
        bucket = TokenBucket(rate_per_s=2.0, capacity=2.0)
        for _ in range(2):
            assert bucket.ready_at(T0, 1) == T0
            bucket.take(T0, 1)
        assert bucket.ready_at(T0, 1) == pytest.approx(T0 + 0.5)
        assert bucket.ready_at(T0 + 0.5, 1) == T0 + 0.5

    def test_refill_stops_at_capacity(self) -> None:
        """A long idle period refills to capacity, not beyond."""
        bucket = TokenBucket(rate_per_s=1.0, capacity=3.0)
        bucket.take(T0, 3)
        assert bucket.level(T0 + 1_000) == 3.0

    def test_oversized_take_waits_for_full_bucket_then_leaves_debt(self) -> None:
        """A cost above capacity goes once full; the debt delays the next taker."""
        bucket = TokenBucket(rate_per_s=10.0, capacity=10.0)
        assert bucket.ready_at(T0, 50) == T0
        bucket.take(T0, 50)
        assert bucket.level(T0) == -40.0
        assert bucket.ready_at(T0, 10) == pytest.approx(T0 + 5.0)

    def test_out_of_order_time_does_not_refill(self) -> None:
        """A take stamped earlier than the last one refills nothing and keeps the clock."""
        bucket = TokenBucket(rate_per_s=1.0, capacity=1.0)
        bucket.take(T0 + 10, 1)
        bucket.take(T0 + 5, 1)
        assert bucket.level(T0 + 10) == -1.0

    def test_per_minute_rates(self) -> None:
        """rpm 600 → 10/s with a one-second burst; tiny limits still allow one at a time."""
        bucket = TokenBucket.per_minute(600)
        assert (bucket.rate_per_s, bucket.capacity) == (10.0, 10.0)
        tiny = TokenBucket.per_minute(3)
        assert (tiny.rate_per_s, tiny.capacity) == (0.05, 1.0)

    def test_bad_parameters_rejected(self) -> None:
        """Zero rate or capacity is a configuration error."""
        with pytest.raises(ValueError):
            TokenBucket(rate_per_s=0, capacity=1)


class TestProviderLimiter:
    """rpm/tpm of one provider account: a request takes 1 request and its tokens."""

    def test_no_limits_means_go(self) -> None:
        """Without rpm/tpm nothing is paced."""
        limiter = ProviderLimiter(None, None)
        limiter.reserve(T0, 10**9)
        assert limiter.available_at(T0, 10**9) == T0

    def test_rpm_paces_requests(self) -> None:
        """rpm 60: one request per second after the burst."""
        limiter = ProviderLimiter(60, None)
        assert limiter.available_at(T0, 5) == T0
        limiter.reserve(T0, 5)
        assert limiter.available_at(T0, 5) == pytest.approx(T0 + 1.0)

    def test_tpm_paces_tokens(self) -> None:
        """tpm 60,000 = 1,000 tokens/s: after 1,000 tokens the next 500 wait half a second."""
        limiter = ProviderLimiter(None, 60_000)
        limiter.reserve(T0, 1_000)
        assert limiter.available_at(T0, 500) == pytest.approx(T0 + 0.5)

    def test_stricter_budget_wins(self) -> None:
        """The later of the request and token readiness applies."""
        limiter = ProviderLimiter(600, 6_000)
        limiter.reserve(T0, 300)
        assert limiter.available_at(T0, 100) == pytest.approx(T0 + 0.3)

    def test_reservations_space_concurrent_jobs(self) -> None:
        """Jobs that reserve as they become ready go out one interval apart, not together."""
        limiter = ProviderLimiter(120, None)
        limiter.reserve(T0, 1)
        limiter.reserve(T0, 1)
        now, sent = T0, []
        for _ in range(5):
            now = limiter.available_at(now, 1)
            limiter.reserve(now, 1)
            sent.append(now - T0)
        assert sent == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5])

    def test_woken_at_ready_time_goes_despite_rounding(self) -> None:
        """Arriving exactly at the computed time is enough, float rounding notwithstanding."""
        limiter = ProviderLimiter(7, 70_000)
        now = T0 + 0.1
        for _ in range(50):
            limiter.reserve(now, 333)
            now = limiter.available_at(now, 333)
            assert limiter.available_at(now, 333) == now


class TestSpreadWakeup:
    """Waiting jobs wake scattered after the reset, not all at once."""

    def test_ready_now_is_unchanged(self) -> None:
        """No wait, no jitter."""
        assert spread_wakeup(T0, T0, lambda: 0.99) == T0
        assert spread_wakeup(T0 - 1, T0, lambda: 0.99) == T0 - 1

    @given(
        st.floats(min_value=0.001, max_value=10_000, allow_nan=False),
        st.floats(min_value=0, max_value=1, exclude_max=True),
    )
    def test_never_before_ready_and_bounded(self, wait: float, draw: float) -> None:
        """The wake-up is at or after the ready time and at most min(5 s, 25%) later."""
        woke = spread_wakeup(T0 + wait, T0, lambda: draw)
        assert T0 + wait <= woke <= T0 + wait + min(MAX_SPREAD_S, 0.25 * wait) + 1e-6

    def test_many_waiters_do_not_share_an_instant(self) -> None:
        """100 jobs waiting for the same 20 s reset wake at distinct times across the window."""
        rng = random.Random(7)
        wakes = sorted(spread_wakeup(T0 + 20, T0, rng.random) for _ in range(100))
        assert len(set(wakes)) == 100
        assert wakes[0] >= T0 + 20
        assert wakes[-1] - wakes[0] > 2.5


class TestLearnedRequestBucket:
    """The request refill rate is learned from limit/remaining/reset headers, and jobs book slots on it."""

    @staticmethod
    def snapshot(remaining: int, reset_in: float, now: float) -> RateLimitSnapshot:
        return RateLimitSnapshot(
            limit_requests=600, remaining_requests=remaining, requests_reset_at=now + reset_in
        )

    def test_rate_is_learned_from_headers(self) -> None:
        """600 limit, 0 remaining, full again in 60 s: 10 requests per second."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.0), sent_at=100.0, received_at=100.0)
        assert pacer.learned_rate == pytest.approx(10.0)

    def test_bookings_get_distinct_slots_at_the_learned_rate(self) -> None:
        """Each booking takes the next slot: waiting jobs queue 0.1 s apart instead of stampeding."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.0), sent_at=100.0, received_at=100.0)
        slots = []
        for _ in range(5):
            slots.append(pacer.learned_ready_at(100.0))
            pacer.book(100.0)
        assert slots == pytest.approx([100.1, 100.2, 100.3, 100.4, 100.5])

    def test_a_share_of_the_account_paces_to_that_share(self) -> None:
        """At share 0.5 (two workers on one account) slots come at half the rate, from half of what remains."""
        pacer = RoutePacer(share=0.5)
        pacer.observe_snapshot(self.snapshot(2, 59.8, 100.0), sent_at=100.0, received_at=100.0)
        slots = []
        for _ in range(3):
            slots.append(pacer.learned_ready_at(100.0))
            pacer.book(100.0)
        # 598 used over 59.8 s: 10/s for the account, 5/s here; 1 of the 2 left is this worker's
        assert slots == pytest.approx([100.0, 100.2, 100.4])

    def test_share_counts_against_remaining_before_a_rate_is_learned(self) -> None:
        """With 3 requests left and half the account, the second reservation already waits for the reset."""
        pacer = RoutePacer(share=0.5)
        snapshot = RateLimitSnapshot(limit_requests=600, remaining_requests=3, requests_reset_at=130.0)
        pacer.observe_snapshot(snapshot, sent_at=100.0)  # no receive time: nothing learned
        assert pacer.learned_rate is None
        pacer.reserve(100.0, 10)
        assert pacer.available_at(100.0, 10) == 100.0  # 1.5 - 1 > 0
        pacer.reserve(100.0, 10)
        assert pacer.available_at(100.0, 10) == 130.0

    def test_a_booking_past_its_slot_but_unsent_still_counts(self) -> None:
        """A job sending late (back from a delay topic, or after a cooldown) keeps its place: its
        slot is not handed out again when a snapshot newer than the slot arrives."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.0), sent_at=100.0, received_at=100.0)
        for _ in range(3):
            pacer.book(100.0)  # slots 100.1, 100.2, 100.3, none sent yet
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.5), sent_at=100.5, received_at=100.5)
        assert pacer.learned_ready_at(100.5) == pytest.approx(100.5 + 0.4)

    def test_a_sent_booking_counts_once(self) -> None:
        """Sent after the snapshot's request: counted (ledger); sent before it: in the provider's count."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.0), sent_at=100.0, received_at=100.0)
        pacer.book(100.0)
        pacer.reserve(100.1, 10)  # the booked request goes out
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.05), sent_at=100.05, received_at=100.05)
        assert pacer.learned_ready_at(100.05) == pytest.approx(100.05 + 0.2)
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.2), sent_at=100.2, received_at=100.2)
        assert pacer.learned_ready_at(100.2) == pytest.approx(100.2 + 0.1)

    def test_a_booking_never_sent_is_forgotten_after_the_grace(self) -> None:
        """A booking whose job failed or moved on stops holding the bucket BOOKING_GRACE_S after its slot."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.0), sent_at=100.0, received_at=100.0)
        pacer.book(100.0)  # slot 100.1, never sent
        later = 100.1 + BOOKING_GRACE_S + 1
        pacer.observe_snapshot(self.snapshot(0, 60.0, later), sent_at=later, received_at=later)
        assert pacer.learned_ready_at(later) == pytest.approx(later + 0.1)

    def test_a_newer_snapshot_keeps_bookings_it_does_not_reflect(self) -> None:
        """Slots booked after the snapshot's request was sent stay taken when the snapshot is adopted."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.0), sent_at=100.0, received_at=100.0)
        for _ in range(10):
            pacer.book(100.0)
        pacer.observe_snapshot(self.snapshot(0, 60.0, 100.05), sent_at=100.05, received_at=100.05)
        assert pacer.learned_ready_at(100.05) == pytest.approx(100.05 + 1.1)

    def test_little_used_budget_teaches_nothing(self) -> None:
        """With 599 of 600 left, rounding would distort the rate: nothing is learned yet."""
        pacer = RoutePacer()
        pacer.observe_snapshot(self.snapshot(599, 0.05, 100.0), sent_at=100.0, received_at=100.0)
        assert pacer.learned_rate is None
        assert pacer.learned_ready_at(100.0) == 100.0


class TestSlowStart:
    """Until a route has answered once, only one request goes to it."""

    def test_second_request_waits_for_the_first_answer(self) -> None:
        """One reservation out and no answer yet: the next request is held back briefly."""
        pacer = RoutePacer()
        assert pacer.available_at(10.0, 100) == 10.0
        pacer.reserve(10.0, 100)
        assert pacer.available_at(10.0, 100) > 10.0

    def test_an_answer_lifts_the_slow_start(self) -> None:
        """After the first answer (even without quota headers) requests flow freely."""
        pacer = RoutePacer()
        pacer.reserve(10.0, 100)
        pacer.answered = True
        assert pacer.available_at(10.0, 100) == 10.0

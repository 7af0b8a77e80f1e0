"""Pacing: when may the next request go to a route without being rate-limited?

Three sources, all answered as "not before time T" (wall-clock epoch seconds):

1. **The provider's own quota headers** (`RateLimitSnapshot`, per route). When
   the remaining requests are used up, or fewer tokens remain than the request
   needs, and the reset is still ahead, the route waits for the reset.
   Headers describe the quota when the server admitted that request, so every
   reservation made after it was sent is subtracted locally (a *ledger*):
   with 200 jobs in flight a snapshot saying "5 requests left" lets 5 more go,
   not 200. Snapshots are ordered by when their request was sent (response
   time minus latency), the moment the server's numbers describe; one arriving
   late from a slow call never replaces a fresher view or moves a reset back.
   The newest snapshot replaces the previous one whole (providers send the
   request and token budgets together).
2. **A cooldown after a 429** (or any answer carrying retry-after), per route:
   nothing goes before it ends. It only ever moves forward.
3. **Configured limits** (`ProviderSpec.rpm` / `tpm`) as token buckets, one pair
   per provider account because all its models share the account limit. A
   request takes 1 request and its estimated tokens. Buckets refill
   continuously and may go into debt, so a request larger than the burst still
   goes once the bucket is full and later requests wait for the debt to clear.

Many jobs wait on a rate-limited route at once. If they all woke at the reset
they would stampede into another 429; `spread_wakeup` scatters wake-ups over a
window after the reset, and the ledger and buckets then let through only what
the quota allows.

Nothing here sleeps or reads a clock: the caller passes `now`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from qroute.catalog.types import ProviderSpec
from qroute.providers.base import RateLimitSnapshot

BURST_S = 1.0
"""Seconds of a per-minute limit that may go at once. Providers enforce per-minute
limits over shorter windows (OpenAI quantises to per-second; Azure checks 1 s or
10 s windows), so a full minute's burst would be refused."""

_ROUNDING = 1e-9
"""Slack when comparing a refilled level with a need, so a caller waking at exactly the
computed ready time is not sent back to sleep for a nanosecond of float error."""

LEARN_MIN_USED = 5
LEARN_MIN_USED_SHARE = 0.05
"""A rate is learned from headers only once this much of the request budget is used."""

FIRST_ANSWER_POLL_S = 0.1
"""How often requests held back by the slow start look again."""

MAX_BOOKED = 100_000
"""Bound on remembered bookings per route."""

BOOKING_GRACE_S = 30.0
"""A booking still unsent this long after its slot is forgotten: its job failed, chose
another route or moved to another worker. Jobs parked on a delay topic come back at their
slot, well within this."""

LEDGER_MEMORY_S = 600.0
"""How long a reservation is remembered while no newer snapshot covers it; longer
than any call may take, so it is only a bound on memory."""

SPREAD_FRACTION = 0.25
"""Wake-ups after a wait of W seconds are scattered over the following `SPREAD_FRACTION`·W…"""

MAX_SPREAD_S = 5.0
"""…but never over more than this many seconds, so long waits do not grow longer still."""


def spread_wakeup(
    ready_at: float,
    now: float,
    rng: Callable[[], float],
    *,
    fraction: float = SPREAD_FRACTION,
    max_spread_s: float = MAX_SPREAD_S,
) -> float:
    """`ready_at` plus a random share of a window proportional to the wait (unchanged when ready)."""
    wait = ready_at - now
    if wait <= 0:
        return ready_at
    return ready_at + max(0.0, rng()) * min(max_spread_s, fraction * wait)


class TokenBucket:
    """A continuously refilling budget of `rate_per_s`, holding at most `capacity`.

    It starts full. Taking more than is there leaves a debt that later takers
    wait out; a take larger than `capacity` waits only for a full bucket.
    """

    def __init__(self, rate_per_s: float, capacity: float) -> None:
        if rate_per_s <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._level = capacity
        self._updated: float | None = None

    @classmethod
    def starting_at(cls, rate_per_s: float, capacity: float, level: float, now: float) -> TokenBucket:
        """A bucket known to hold `level` at `now` (e.g. a provider's reported remaining quota)."""
        bucket = cls(rate_per_s, capacity)
        bucket._level = min(level, capacity)
        bucket._updated = now
        return bucket

    @classmethod
    def per_minute(cls, limit: float, *, burst_s: float = BURST_S) -> TokenBucket:
        """A bucket for a per-minute limit, allowing `burst_s` seconds' worth at once (at least 1)."""
        rate = limit / 60.0
        return cls(rate, max(1.0, rate * burst_s))

    def level(self, now: float) -> float:
        """What is available at `now` (negative while in debt)."""
        if self._updated is None or now <= self._updated:
            return self._level
        return min(self.capacity, self._level + (now - self._updated) * self.rate_per_s)

    def ready_at(self, now: float, cost: float) -> float:
        """Earliest time `cost` can be taken (≤ `now` means now)."""
        need = min(cost, self.capacity)
        level = self.level(now)
        if level + _ROUNDING >= need:
            return now
        return now + (need - level) / self.rate_per_s

    def take(self, now: float, cost: float) -> None:
        """Take `cost` at `now`, going into debt if there is not enough."""
        level = self.level(now)
        if self._updated is None or now > self._updated:
            self._updated = now
        self._level = level - cost


class ProviderLimiter:
    """The configured rpm/tpm of one provider account, shared by all its routes.

    `share` is this worker's part of the account (see `RouteStateBook.set_share`):
    the buckets refill at rpm·share and tpm·share.
    """

    def __init__(
        self, rpm: int | None, tpm: int | None, *, burst_s: float = BURST_S, share: float = 1.0
    ) -> None:
        self._rpm, self._tpm, self._burst_s = rpm, tpm, burst_s
        self.requests = None if rpm is None else TokenBucket.per_minute(rpm * share, burst_s=burst_s)
        self.tokens = None if tpm is None else TokenBucket.per_minute(tpm * share, burst_s=burst_s)

    @classmethod
    def for_provider(cls, spec: ProviderSpec, *, share: float = 1.0) -> ProviderLimiter:
        return cls(spec.rpm, spec.tpm, share=share)

    def with_share(self, share: float) -> ProviderLimiter:
        """The same limits at another share (fresh buckets: a rebalance is rare)."""
        return ProviderLimiter(self._rpm, self._tpm, burst_s=self._burst_s, share=share)

    def available_at(self, now: float, est_tokens: int) -> float:
        """Earliest time both buckets can take one request of `est_tokens`."""
        ready = now
        if self.requests is not None:
            ready = max(ready, self.requests.ready_at(now, 1))
        if self.tokens is not None:
            ready = max(ready, self.tokens.ready_at(now, est_tokens))
        return ready

    def reserve(self, now: float, est_tokens: int) -> bool:
        """Take one request and `est_tokens` from the buckets; False when none is configured."""
        if self.requests is not None:
            self.requests.take(now, 1)
        if self.tokens is not None:
            self.tokens.take(now, est_tokens)
        return self.requests is not None or self.tokens is not None


class RoutePacer:
    """Quota headers, reservation ledger and 429 cooldown for one route.

    `share` is this worker's part of the account's quota (1.0 alone; see
    `RouteStateBook.set_share`). The provider's headers describe the whole
    account, so a worker counts only its share of what remains and of the
    refill; other workers spend the rest.
    """

    def __init__(self, share: float = 1.0) -> None:
        self.share = share
        self._snapshot: RateLimitSnapshot | None = None
        self._snapshot_sent_at = float("-inf")
        self._ledger: deque[tuple[float, int]] = deque()
        """(reserved_at, est_tokens) of reservations the current snapshot does not reflect."""
        self._ledger_tokens = 0
        self.cooldown_until = float("-inf")
        self.consecutive_rate_limits = 0
        """429s in a row on this route; the backoff exponent when no retry-after came."""
        self.answered = False
        """Whether any call to this route has come back yet (see `available_at`)."""
        self.learned_rate: float | None = None
        """Request refill rate (per second) derived from the quota headers, once known."""
        self._learned: TokenBucket | None = None
        self._booked: deque[float] = deque()
        """Slots (epoch seconds) booked on the learned bucket and not sent yet, oldest first."""

    @property
    def snapshot(self) -> RateLimitSnapshot | None:
        return self._snapshot

    def observe_snapshot(
        self, snapshot: RateLimitSnapshot, *, sent_at: float, received_at: float | None = None
    ) -> bool:
        """Adopt `snapshot` if its request was sent no earlier than the current one's.

        Returns whether it was adopted. Reservations made up to `sent_at` are
        reflected in it and leave the ledger.
        """
        self.answered = True
        if sent_at < self._snapshot_sent_at:
            return False
        self._snapshot = snapshot
        self._snapshot_sent_at = sent_at
        self._forget_until(sent_at)
        self._learn(snapshot, sent_at, received_at)
        return True

    def _learn(self, snap: RateLimitSnapshot, sent_at: float, received_at: float | None) -> None:
        """Derive the request bucket (capacity, refill rate, level) from a snapshot.

        Providers report the limit, what remains and when the bucket is full again
        ("reset"), so the refill rate is (limit - remaining) / time-to-reset. With
        it, waiting jobs get distinct future slots instead of all aiming at the
        reset, and a job can tell whether its slot meets its deadline. Only
        trusted when enough of the budget is used that the integer rounding of
        `remaining` cannot distort the rate much.
        """
        limit, remaining, reset_at = snap.limit_requests, snap.remaining_requests, snap.requests_reset_at
        if limit is None or remaining is None or limit <= 0:
            return
        if reset_at is not None and received_at is not None:
            used, window = limit - remaining, reset_at - received_at
            if used >= max(LEARN_MIN_USED, LEARN_MIN_USED_SHARE * limit) and window > 0:
                self.learned_rate = used / window
        if self.learned_rate is None:
            return
        share = self.share
        bucket = TokenBucket.starting_at(
            self.learned_rate * share, max(1.0, limit * share), remaining * share, sent_at
        )
        # Not in the provider's count: requests sent after this one (the ledger, already
        # trimmed to after `sent_at`) and booked requests not sent yet, whatever their slot.
        # Judging bookings by slot time instead forgot every job that sends after its slot
        # (back late from a delay topic, or waiting out a cooldown) and gave its slot away.
        horizon = sent_at - BOOKING_GRACE_S
        while self._booked and self._booked[0] < horizon:
            self._booked.popleft()
        pending = len(self._booked) + len(self._ledger)
        if pending:
            bucket.take(sent_at, pending)
        self._learned = bucket

    def learned_ready_at(self, now: float) -> float:
        """Next free slot on the learned request bucket (≤ `now`: now); `now` when nothing is learned."""
        if self._learned is None:
            return now
        return self._learned.ready_at(now, 1)

    def book(self, now: float) -> bool:
        """Take the next slot on the learned request bucket for a request that will go then.

        False when no rate is learned yet: there is no slot to take.
        """
        if self._learned is None:
            return False
        slot = self._learned.ready_at(now, 1)
        self._learned.take(now, 1)
        self._booked.append(max(slot, now))
        if len(self._booked) > MAX_BOOKED:
            self._booked.popleft()
        return True

    def cool_down(self, until: float) -> None:
        """Refuse requests before `until`; an earlier end than the current one changes nothing."""
        self.cooldown_until = max(self.cooldown_until, until)

    def available_at(self, now: float, est_tokens: int) -> float:
        """Earliest time a request of `est_tokens` may go (≤ `now` means now)."""
        ready = max(now, self.cooldown_until)
        snap = self._snapshot
        if not self.answered and self._ledger:
            # Slow start: until the first answer tells us the quota, one request is
            # enough; a cold worker flooding an unknown limit earns a wave of 429s.
            return max(ready, now + FIRST_ANSWER_POLL_S)
        if snap is None:
            return ready
        if (
            self._learned is None
            and snap.remaining_requests is not None
            and snap.requests_reset_at is not None
        ):
            left = snap.remaining_requests * self.share - len(self._ledger)
            if left <= 0 and snap.requests_reset_at > now:
                ready = max(ready, snap.requests_reset_at)
        if snap.remaining_tokens is not None and snap.tokens_reset_at is not None:
            left = snap.remaining_tokens * self.share - self._ledger_tokens
            if left < est_tokens and snap.tokens_reset_at > now:
                ready = max(ready, snap.tokens_reset_at)
        return ready

    def reserve(self, now: float, est_tokens: int) -> None:
        """Count a request about to be sent against the last snapshot's remaining budget.

        It uses up the oldest booking (every send was booked when a rate was known):
        from here on the ledger accounts for it.
        """
        if self._booked:
            self._booked.popleft()
        self._ledger.append((now, est_tokens))
        self._ledger_tokens += est_tokens
        self._forget_until(now - LEDGER_MEMORY_S)

    def _forget_until(self, horizon: float) -> None:
        while self._ledger and self._ledger[0][0] <= horizon:
            _, tokens = self._ledger.popleft()
            self._ledger_tokens -= tokens

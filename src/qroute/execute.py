"""The attempt loop: a job and its ranked routes in, one Result and one CostRecord out.

Cost first, deadline aware:
- routes are tried cheapest first (the planner's order);
- when the cheapest usable route is rate-limited, the job waits for it if the wait
  still meets the deadline (plus expected latency and a margin), otherwise it fails
  over to the next cheapest route; waits longer than `defer_threshold_s` are handed
  back to the caller as `Deferred` so the Kafka layer can park the job without
  blocking a partition;
- transient failures (5xx, timeouts, resets, garbage) are retried on the same route
  with full-jitter backoff a few times, then the job fails over;
- a failed attempt the provider does not bill costs zero and the record says so;
- the job's `max_cost_usd` is never exceeded: a route whose worst case would break
  it is skipped;
- the loop stops at the deadline or the attempt budget with a failed result that
  says why. Nothing raises out of it for provider trouble.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from qroute.catalog.types import Route
from qroute.config import RoutingSettings
from qroute.models import (
    Attempt,
    AttemptBrief,
    CostRecord,
    ErrorInfo,
    FailureType,
    Job,
    Result,
    Timings,
)
from qroute.observability.metrics import Metrics
from qroute.providers.base import ProviderOutcome
from qroute.providers.http import HttpClient, send
from qroute.providers.registry import adapter_for
from qroute.resilience.backoff import retry_delay
from qroute.resilience.state import RouteStateBook
from qroute.routing.cost import cost_of, estimate_cost
from qroute.routing.planner import RouteEstimate, plan
from qroute.worker.processing import Deferred, Finished

ROUTE_RETRIES = 2
"""Transient failures retried on one route before failing over to the next."""

ROUTE_RATE_LIMITS = 2
"""429s one job takes from one route before it moves on (when another route is left)."""

INPUT_ESTIMATE_SAFETY = Decimal("1.25")
"""Worst-case factor on the offline input-token estimate when guarding max_cost_usd."""

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    """Provenance of the prices used, copied into every cost record."""

    source: str
    version: str


@dataclass(slots=True)
class _JobRun:
    """Mutable bookkeeping for one job's pass through the loop."""

    job: Job
    attempts: list[Attempt]
    started: float
    spent: Decimal
    excluded: dict[str, str] = field(default_factory=dict)
    route_retries: dict[str, int] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)
    last_error: str | None = None


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class Executor:
    """Runs jobs through providers. One per worker; safe for many concurrent jobs."""

    def __init__(
        self,
        *,
        routes: Sequence[Route],
        state: RouteStateBook,
        client: HttpClient,
        api_keys: Mapping[str, str | None],
        settings: RoutingSettings,
        catalog: CatalogInfo,
        metrics: Metrics | None = None,
        allow_defer: bool = True,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._routes = tuple(routes)
        self._state = state
        self._client = client
        self._keys = api_keys
        self._settings = settings
        self._catalog = catalog
        self._metrics = metrics
        self._allow_defer = allow_defer
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._bookings: dict[str, tuple[str, float]] = {}

    async def __call__(self, job: Job, prior: tuple[Attempt, ...] = ()) -> Finished | Deferred:
        return await self.run(job, prior)

    async def run(self, job: Job, prior: tuple[Attempt, ...] = ()) -> Finished | Deferred:
        """Process one job; `prior` is the attempt history carried through deferrals."""
        now = self._clock()
        run = _JobRun(
            job=job,
            attempts=list(prior),
            started=now,
            spent=sum((a.cost_usd for a in prior), start=Decimal(0)),
        )
        for a in prior:  # a deferred job keeps what it learned about each route
            rid = f"{a.provider}/{a.model}"
            if a.outcome == "rate_limited":
                run.rate_limited[rid] = run.rate_limited.get(rid, 0) + 1
            elif a.action == "retry":
                run.route_retries[rid] = run.route_retries.get(rid, 0) + 1
            elif a.action == "failover":
                run.excluded[rid] = a.error or a.outcome
        for rid, count in run.rate_limited.items():
            if count >= ROUTE_RATE_LIMITS:
                run.excluded.setdefault(rid, f"rate limited {count} times")
        for rid, count in run.route_retries.items():
            if count > ROUTE_RETRIES:
                run.excluded.setdefault(rid, f"failed {count} times")
        deadline = job.constraints.deadline.timestamp() if job.constraints.deadline else None
        if deadline is not None and deadline <= now:
            return self._fail(run, "expired", "the job's deadline had passed before it was started")

        job_plan = plan(
            job,
            self._routes,
            self._state.health_view(now),
            expected_output_ratio=self._settings.default_expected_output_ratio,
        )
        if not job_plan.ranked:
            reasons = job_plan.explanation or "no routes are configured"
            return self._fail(run, "no_eligible_route", f"no route satisfies the job ({reasons})")

        max_attempts = job.constraints.max_attempts or self._settings.max_attempts
        while True:
            now = self._clock()
            if deadline is not None and now >= deadline:
                return self._fail(run, "deadline_exceeded", self._why("the deadline passed", run))
            if len(run.attempts) >= max_attempts:
                return self._fail(
                    run, "attempts_exhausted", self._why(f"{len(run.attempts)} attempts used", run)
                )
            choice = self._choose(run, job_plan.ranked, now, deadline)
            if isinstance(choice, str):
                kind: FailureType = "budget_exceeded"
                if choice == "deadline":
                    kind = "deadline_exceeded"
                elif choice == "exhausted":
                    kind = "attempts_exhausted"
                return self._fail(run, kind, self._why(_CHOICE_TEXT[choice], run))
            estimate, ready_at, slotted = choice
            route = estimate.route
            wait = ready_at - now
            if wait > 0:
                # Keep the slot: after the wait (or the deferral) the job comes back
                # through _choose, which re-checks provider signals but does not book again.
                # A wait with no slot (only a provider signal, no rate known yet) keeps
                # nothing: holding it would let every such job send at the signal's end
                # regardless of the rate learned meanwhile (bursts of 429s).
                if slotted:
                    self._keep_booking(job.id, route.id, ready_at, now)
                if wait > self._settings.defer_threshold_s and self._allow_defer:
                    return Deferred(not_before=ready_at, attempts=tuple(run.attempts))
                await self._sleep(wait)
                continue
            if not self._state.allow(route, self._clock()):
                continue  # its circuit opened while we waited: choose again
            self._state.sending(route, estimate.input_tokens + estimate.output_tokens, self._clock())
            outcome = await self._attempt(run, estimate)
            if outcome.action == "done":
                return self._succeed(run, route, outcome)
            if outcome.action == "terminal":
                return self._fail(run, "provider_rejected", f"{route.id}: {outcome.error or outcome.outcome}")
            if outcome.action == "failover":
                self._exclude(run, route.id, outcome.error or outcome.outcome)
            elif outcome.outcome == "rate_limited":
                # Our view of the quota was wrong (another worker, another client on the
                # account): wait as told, but do not let one route eat the attempt budget.
                limited = run.rate_limited.get(route.id, 0) + 1
                run.rate_limited[route.id] = limited
                if limited >= ROUTE_RATE_LIMITS and self._has_alternative(run, job_plan.ranked, route.id):
                    self._exclude(run, route.id, f"rate limited {limited} times")
            else:
                retries = run.route_retries.get(route.id, 0) + 1
                run.route_retries[route.id] = retries
                if retries > ROUTE_RETRIES:
                    self._exclude(run, route.id, f"{outcome.outcome} after {retries} tries")

    # -- choosing the next route -------------------------------------------------

    def _choose(
        self, run: _JobRun, ranked: Sequence[RouteEstimate], now: float, deadline: float | None
    ) -> tuple[RouteEstimate, float, bool] | str:
        """The cheapest route worth using, when to send to it (≤ now: at once), and whether
        that time is a booked slot.

        Walks the routes cheapest first. A route whose next free slot (rate limits,
        cooldown, backoff, circuit) plus expected latency would miss the deadline is
        passed over for the next cheapest, and so is one whose circuit is open
        (used only when nothing else is left). The chosen slot is booked in the
        provider's rpm/tpm buckets, so concurrent jobs queue behind each other.
        Returns a reason code when nothing is usable.
        """
        cap = run.job.constraints.max_cost_usd
        booking = self._bookings.pop(run.job.id, None)
        any_budget_ok = False
        soonest: tuple[RouteEstimate, float, bool] | None = None
        max_attempts = run.job.constraints.max_attempts or self._settings.max_attempts
        last_try = max_attempts - len(run.attempts) <= 1
        failed_here = {f"{a.provider}/{a.model}" for a in run.attempts if a.action != "done"}
        fresh_left = last_try and any(
            e.route.id not in failed_here and e.route.id not in run.excluded for e in ranked
        )
        for estimate in ranked:
            route = estimate.route
            if route.id in run.excluded:
                continue
            if fresh_left and route.id in failed_here:
                continue  # the last attempt goes to a route that has not failed this job
            if cap is not None and run.spent + self._worst_case(run.job, estimate) > cap:
                continue
            any_budget_ok = True
            held = booking is not None and booking[0] == route.id
            circuit_ready = ready = self._state.circuit_ready_at(route, now)
            if held and booking is not None:
                tokens = estimate.input_tokens + estimate.output_tokens
                ready = max(ready, booking[1], self._state.signal_ready_at(route, tokens, now))
            else:
                ready = max(ready, self._ready_at(run, estimate, now))
            if circuit_ready > now:
                # Open circuit (or its one probe already out): the route is presumed down,
                # so the next cheapest serves; it is waited for only when nothing else is left.
                if soonest is None or ready < soonest[1]:
                    soonest = (estimate, ready, held)
                continue
            if deadline is not None:
                latency = self._state.expected_latency(route) + self._settings.deadline_margin_s
                if max(ready, now) + latency > deadline:
                    # Waiting here would miss the deadline: try the next cheapest.
                    if soonest is None or ready < soonest[1]:
                        soonest = (estimate, ready, held)
                    continue
            return self._take(estimate, ready, held, now)
        if not any_budget_ok:
            return "budget"
        if soonest is not None and (deadline is None or soonest[1] < deadline):
            # Nothing is usable now or in time; the soonest route is still worth a try.
            return self._take(*soonest, now)
        if all(e.route.id in run.excluded for e in ranked):
            return "exhausted"
        return "deadline"

    def _take(
        self, estimate: RouteEstimate, ready: float, held: bool, now: float
    ) -> tuple[RouteEstimate, float, bool]:
        if held:
            return estimate, ready, True
        slotted = self._state.book(estimate.route, estimate.input_tokens + estimate.output_tokens, now)
        return estimate, ready, slotted

    @staticmethod
    def _has_alternative(run: _JobRun, ranked: Sequence[RouteEstimate], route_id: str) -> bool:
        return any(e.route.id != route_id and e.route.id not in run.excluded for e in ranked)

    def _keep_booking(self, job_id: str, route_id: str, slot: float, now: float) -> None:
        """Remember a deferred job's slot so it does not queue twice when it comes back."""
        if len(self._bookings) > 100_000:
            stale = [j for j, (_, at) in self._bookings.items() if at < now - 600]
            for j in stale:
                del self._bookings[j]
        self._bookings[job_id] = (route_id, slot)

    def _ready_at(self, run: _JobRun, estimate: RouteEstimate, now: float) -> float:
        """When the route can take this job: pacing, plus backoff after a transient failure."""
        tokens = estimate.input_tokens + estimate.output_tokens
        ready = self._state.available_at(estimate.route, tokens, now)
        retries = run.route_retries.get(estimate.route.id, 0)
        if retries and run.attempts:
            last = run.attempts[-1]
            last_end = last.started_at.timestamp() + last.duration_ms / 1000
            backoff = retry_delay(
                retries - 1,
                None,
                base=self._settings.backoff_base_s,
                cap=self._settings.backoff_cap_s,
                rng=self._rng,
            )
            ready = max(ready, last_end + backoff)
        return ready

    @staticmethod
    def _worst_case(job: Job, estimate: RouteEstimate) -> Decimal:
        worst_input = int(Decimal(estimate.input_tokens) * INPUT_ESTIMATE_SAFETY) + 1
        return estimate_cost(worst_input, job.params.max_tokens, estimate.route.model)

    def _exclude(self, run: _JobRun, route_id: str, why: str) -> None:
        run.excluded[route_id] = why
        if self._metrics is not None:
            self._metrics.failover(route_id)

    # -- one attempt -----------------------------------------------------------

    async def _attempt(self, run: _JobRun, estimate: RouteEstimate) -> ProviderOutcome:
        route = estimate.route
        started = self._clock()
        outcome, latency = await send(
            self._client,
            adapter_for(route.provider.family),
            run.job,
            route,
            self._keys.get(route.provider.name),
        )
        finished = self._clock()
        self._state.observe(route, outcome, latency, finished)
        cost = Decimal(0)
        if outcome.billed and outcome.usage is not None:
            cost = cost_of(outcome.usage, route.model)
        run.spent += cost
        run.last_error = outcome.error or outcome.outcome
        action = outcome.action
        run.attempts.append(
            Attempt(
                n=len(run.attempts) + 1,
                provider=route.provider.name,
                model=route.model.model,
                outcome=outcome.outcome,
                action=action,
                status_code=outcome.status_code,
                provider_request_id=outcome.request_id,
                error=outcome.error,
                usage=outcome.usage if outcome.billed else None,
                billed=outcome.billed and outcome.usage is not None,
                cost_usd=cost,
                started_at=_dt(started),
                duration_ms=round(max(0.0, finished - started) * 1000, 3),
            )
        )
        if self._metrics is not None:
            self._metrics.attempt(route.id, outcome.outcome, action, latency)
            if outcome.outcome == "rate_limited":
                self._metrics.rate_limited(route.id)
            if outcome.usage is not None and outcome.billed:
                self._metrics.cost(route.id, cost, outcome.usage)
        return outcome

    # -- building the answer ---------------------------------------------------

    def _why(self, headline: str, run: _JobRun) -> str:
        if run.last_error:
            return f"{headline}; last error: {run.last_error}"
        if run.excluded:
            return f"{headline}; " + "; ".join(f"{r}: {w}" for r, w in run.excluded.items())
        return headline

    def _cost_record(self, run: _JobRun) -> CostRecord:
        return CostRecord(
            job_id=run.job.id,
            tenant=run.job.tenant,
            batch_id=run.job.batch_id,
            attempts=run.attempts,
            total_cost_usd=sum((a.cost_usd for a in run.attempts), start=Decimal(0)),
            price_source=self._catalog.source,
            price_version=self._catalog.version,
            created_at=_dt(self._clock()),
        )

    def _timings(self, run: _JobRun) -> Timings:
        finished = self._clock()
        created = run.job.created_at
        return Timings(
            created_at=created,
            started_at=_dt(run.started),
            finished_at=_dt(finished),
            queue_ms=round(max(0.0, run.started - created.timestamp()) * 1000, 3),
            run_ms=round(max(0.0, finished - run.started) * 1000, 3),
        )

    def _briefs(self, run: _JobRun) -> list[AttemptBrief]:
        return [
            AttemptBrief(provider=a.provider, model=a.model, outcome=a.outcome, status_code=a.status_code)
            for a in run.attempts
        ]

    def _succeed(self, run: _JobRun, route: Route, outcome: ProviderOutcome) -> Finished:
        cost = self._cost_record(run)
        result = Result(
            job_id=run.job.id,
            tenant=run.job.tenant,
            batch_id=run.job.batch_id,
            status="succeeded",
            output=outcome.text or "",
            finish_reason=outcome.finish_reason,
            provider=route.provider.name,
            model=route.model.model,
            usage=outcome.usage,
            cost_usd=cost.total_cost_usd,
            attempts=self._briefs(run),
            timings=self._timings(run),
            metadata=run.job.metadata,
        )
        return Finished(result=result, cost=cost)

    def _fail(self, run: _JobRun, kind: FailureType, message: str) -> Finished:
        cost = self._cost_record(run)
        result = Result(
            job_id=run.job.id,
            tenant=run.job.tenant,
            batch_id=run.job.batch_id,
            status="failed",
            cost_usd=cost.total_cost_usd,
            attempts=self._briefs(run),
            timings=self._timings(run),
            error=ErrorInfo(type=kind, message=message),
            metadata=run.job.metadata,
        )
        return Finished(result=result, cost=cost)


_CHOICE_TEXT = {
    "budget": "every remaining route would exceed max_cost_usd",
    "exhausted": "every eligible route failed",
    "deadline": "no route can answer before the deadline",
}

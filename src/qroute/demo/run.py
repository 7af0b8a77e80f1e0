"""The tour itself: start the world, submit the nightly batch, watch it finish, sum it up."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from qroute.catalog.load import active_routes, build_catalog
from qroute.catalog.types import ModelSpec, Route
from qroute.client import QRouteClient
from qroute.config import Settings
from qroute.demo.batch import RawRecord, broken_records, nightly_batch
from qroute.demo.collect import Tally, count_parked, following
from qroute.demo.passages import SOURCE, load_text, spread, windows
from qroute.demo.render import progress_bar
from qroute.demo.summary import DemoSummary, summarize
from qroute.demo.world import DemoError, World, demo_world
from qroute.kafka import make_producer
from qroute.models import Job
from qroute.money import usd

GRACE_S = 30.0
"""How long past the jobs' deadline the demo waits for stragglers before it gives up."""
SIM_BASELINES = ("premium/claude-sonnet-4-6", "mid/gpt-5.4-mini")
PREMIUM_TEXT = "every succeeded job's reported usage, priced at this premium route's list prices"
SINGLE_TEXT = (
    "a synchronous gateway calling only this mid-priced route and retrying until it answers; "
    "failed calls are not billed, so it pays this route's price for the same usage (retries cost time, not money)"
)


@dataclass(frozen=True)
class DemoOptions:
    """What `qroute demo` was asked to do."""

    jobs: int = 500
    workers: int = 2
    deadline_s: float = 60.0
    max_tokens: int = 120
    real: bool = False
    config: Path | None = None
    bootstrap: str | None = None
    topic_prefix: str | None = None
    out_dir: Path | None = None


async def submit(settings: Settings, jobs: Sequence[Job], raw: Sequence[RawRecord]) -> None:
    """Publish the batch with the SDK, then the raw records with a plain producer.

    Both wait for every acknowledgement (acks=all). The SDK refuses invalid jobs before
    sending anything, which is why the broken records go through a bare Kafka producer,
    like a line from some other system would.
    """
    async with QRouteClient(settings, listen=False) as client:
        await client.submit_many(jobs)
    if not raw:
        return
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        sends = [await producer.send(settings.topics.jobs, r.value, key=r.key) for r in raw]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def baseline_models(settings: Settings, simulated: bool) -> list[tuple[str, ModelSpec, str]]:
    """The premium-only and single-provider routes the spend is compared with.

    Simulated: the premium provider's mid model (Sonnet-like) and the mid provider's
    cheapest model. Real: the cheapest route of the highest tier configured, and the
    cheapest tier-2 route (or the median-priced one when there is no tier 2).
    """
    routes: list[Route] = active_routes(build_catalog(settings))
    by_id = {r.id: r.model for r in routes}
    if simulated and all(route in by_id for route in SIM_BASELINES):
        premium, single = (by_id[route] for route in SIM_BASELINES)
    else:
        if not routes:
            return []
        price = sorted(routes, key=lambda r: (r.model.output_per_m, r.model.input_per_m))
        top = max(r.model.tier for r in routes)
        premium = next(r.model for r in price if r.model.tier == top)
        tier2 = [r.model for r in price if r.model.tier == 2]
        single = tier2[0] if tier2 else price[len(price) // 2].model
    return [("premium only", premium, PREMIUM_TEXT), ("single provider with retries", single, SINGLE_TEXT)]


def _write_jsonl(path: Path, records: Sequence[object]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


async def _watch(
    world: World, tally: Tally, console: Console, *, total: int, broken: int, until: float
) -> None:
    """Live progress until every job is answered (or `until`, a monotonic time, passes)."""
    with progress_bar(console) as bar:
        task = bar.add_task("summaries", total=total, failed=0, spend="$0")
        while not tally.complete(broken):
            if tally.reader_error is not None:
                raise DemoError(f"lost the result topics: {tally.reader_error!r}")
            if not any(w.alive() for w in world.workers):
                raise DemoError(
                    "every worker exited; see " + ", ".join(str(w.log_path) for w in world.workers)
                )
            if time.monotonic() > until:
                break
            bar.update(task, completed=tally.done, failed=tally.failed, spend=usd(tally.spend))
            await asyncio.sleep(0.25)
        bar.update(task, completed=tally.done, failed=tally.failed, spend=usd(tally.spend))


async def run_demo(options: DemoOptions, console: Console) -> DemoSummary:
    """Run the whole tour; everything started here is stopped before this returns or raises."""
    started = time.monotonic()
    run_id = f"demo-{datetime.now(UTC):%H%M%S}-{uuid.uuid4().hex[:6]}"
    batch_id = f"nightly-{datetime.now(UTC):%Y%m%d}-{run_id[-6:]}"
    out_dir = options.out_dir or Path(tempfile.mkdtemp(prefix="qroute-demo-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        console.print(text, highlight=False)

    if options.real:
        say("[bold yellow]--real: jobs go to the providers configured with API keys and cost real money.[/]")
    else:
        say(
            "[bold]qroute demo[/]: every provider below is [bold]SIMULATED[/] (a local HTTP server); nothing leaves this machine."
        )
    passages = spread(windows(load_text()), options.jobs)
    async with demo_world(
        run_id=run_id,
        out_dir=out_dir,
        workers=options.workers,
        real=options.real,
        config=options.config,
        bootstrap=options.bootstrap,
        topic_prefix=options.topic_prefix,
        say=say,
    ) as world:
        now = datetime.now(UTC)
        jobs = nightly_batch(
            passages,
            run_id=run_id,
            batch_id=batch_id,
            deadline=now + timedelta(seconds=options.deadline_s),
            created_at=now,
            max_tokens=options.max_tokens,
        )
        broken = broken_records(run_id)
        ids = [job.id for job in jobs]
        async with following(world.settings, run_id, ids) as tally:
            await submit(world.settings, jobs, broken)
            say(
                f'Batch {batch_id}: {len(jobs)} jobs ("{jobs[0].messages[0].content.splitlines()[0]}", '
                f"max_tokens {options.max_tokens}, deadline in {options.deadline_s:g} s) from {SOURCE}, "
                f"plus {len(broken)} broken records for the DLQ"
            )
            until = time.monotonic() + options.deadline_s + GRACE_S
            await _watch(world, tally, console, total=len(jobs), broken=len(broken), until=until)
            parked = await count_parked(world.settings)
            ledger = await world.sim.ledger() if world.sim is not None else None
        say("Stopping workers, simulator and broker…")
    results_file, costs_file = out_dir / "results.jsonl", out_dir / "costs.jsonl"
    _write_jsonl(results_file, [tally.results[j] for j in ids if j in tally.results])
    _write_jsonl(costs_file, [tally.costs[j] for j in ids if j in tally.costs])
    return summarize(
        simulated=not options.real,
        run_id=run_id,
        batch_id=batch_id,
        job_ids=ids,
        broken_records_sent=len(broken),
        results=tally.results,
        costs=tally.costs,
        duplicate_results=tally.duplicate_results,
        dead_letters=len(tally.dead_letters),
        parked=parked,
        baselines=baseline_models(world.settings, not options.real),
        ledger_total=ledger.total_cost if ledger is not None else None,
        results_file=str(results_file),
        costs_file=str(costs_file),
        out_dir=str(out_dir),
        wall_time_s=time.monotonic() - started,
    )

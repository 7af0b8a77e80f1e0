"""How long planning one job takes, over every route of the default catalog.

    .venv/bin/python scripts/bench_planner.py [--jobs 2000] [--repeat 5]

Prints µs per job (best of `--repeat` runs, to filter out noise from other
processes) for a few job shapes. Planning includes the token estimate, so the
long-prompt shape also shows what the estimate costs per character.
"""

from __future__ import annotations

import argparse
import functools
import platform
import random
import timeit
from datetime import date
from decimal import Decimal
from typing import Any

from qroute.catalog.types import ModelSpec, ProviderSpec, Route
from qroute.models import Job
from qroute.routing.planner import plan
from qroute.types import RouteHealth


def _routes() -> tuple[str, list[Route]]:
    """Every enabled route of the shipped catalog, or a synthetic 25-model one if it is missing."""
    try:
        from qroute.catalog.load import default_catalog
    except ImportError:
        return "synthetic 25-model catalog", _synthetic(25)
    catalog = default_catalog()
    return f"default catalog {catalog.version}", catalog.routes()


def _synthetic(count: int) -> list[Route]:
    rng = random.Random(3)
    provider = ProviderSpec(name="p", family="openai", base_url="http://127.0.0.1:1/v1")
    return [
        Route(
            provider=provider,
            model=ModelSpec(
                provider="p",
                model=f"m{i}",
                tier=rng.randint(1, 4),
                input_per_m=Decimal(rng.randint(5, 500)) / 100,
                output_per_m=Decimal(rng.randint(20, 3000)) / 100,
                context_window=rng.choice([128_000, 200_000, 1_000_000]),
                max_output_tokens=rng.choice([8_192, 16_384, 65_536]),
                capabilities=frozenset({"json_mode"}) if i % 2 else frozenset(),
                price_source="synthetic",
                price_date=date(2026, 11, 1),
            ),
        )
        for i in range(count)
    ]


def _job(content: str, **fields: Any) -> Job:
    return Job.model_validate({"id": "bench-1", "messages": [{"role": "user", "content": content}], **fields})


PROSE = "The quarterly report shows revenue up 12% while logistics costs fell by a third. "

SHAPES = {
    "short prompt (80 chars), no constraints": _job(PROSE),
    "summary job (4k chars, system prompt, min_tier 2, cap $0.05)": _job(
        PROSE * 50,
        system="Summarise the user's text in three sentences.",
        constraints={"min_tier": 2, "max_cost_usd": "0.05"},
    ),
    "long prompt (40k chars), json_object, allowlist of 5": _job(
        PROSE * 500,
        params={"response_format": "json_object", "max_tokens": 4096},
        constraints={"allowed_models": ["gpt-4o-mini", "gpt-4.1-mini", "claude-haiku-4-5", "m1", "m3"]},
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000, help="plans per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs; the best is reported")
    args = parser.parse_args()

    source, routes = _routes()
    health = {r.id: RouteHealth(latency_s=0.5 + i / 10) for i, r in enumerate(routes) if i % 3}
    print(f"{len(routes)} routes ({source}); Python {platform.python_version()}, {platform.machine()}")
    for name, job in SHAPES.items():
        run = functools.partial(plan, job, routes, health)
        best = min(timeit.repeat(run, number=args.jobs, repeat=args.repeat))
        eligible = len(plan(job, routes, health).ranked)
        print(f"  {best / args.jobs * 1e6:8.1f} µs/job  {name}  ({eligible} eligible)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

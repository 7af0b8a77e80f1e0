"""How the demo looks: the live progress bar and the closing summary (rich)."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from qroute.demo.summary import DemoSummary
from qroute.money import usd


def progress_bar(console: Console) -> Progress:
    """done/total, failed, spend so far, elapsed and ETA; fields `failed` and `spend` are set per update."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TextColumn("spend [green]{task.fields[spend]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _saving(actual: Decimal, baseline: Decimal) -> str:
    if baseline <= 0:
        return ""
    if actual <= baseline:
        return f" → qroute spent {(1 - actual / baseline) * 100:.0f}% less"
    return f" → qroute spent {(actual / baseline - 1) * 100:.0f}% more"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", min_width=13)
    grid.add_column()
    return grid


def summary_panel(s: DemoSummary) -> Panel:
    """The closing summary as one panel."""
    kind = "SIMULATED providers (local HTTP server, no API keys)" if s.simulated else "REAL providers"
    jobs = (
        f"{s.jobs_submitted} submitted · [green]{s.succeeded} succeeded[/] · "
        f"[red]{s.failed} failed[/]"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(s.failure_reasons.items()))})" if s.failed else "")
        + (f" · [bold red]{s.missing} missing[/]" if s.missing else "")
    )
    routes = Table(box=None, padding=(0, 2), show_edge=False)
    routes.add_column("route")
    routes.add_column("jobs", justify="right")
    routes.add_column("billed calls", justify="right")
    routes.add_column("spend (USD, exact)", justify="right")
    for row in s.spend_by_route:
        routes.add_row(row.route, str(row.jobs_finished), str(row.billed_attempts), usd(row.spend_usd))
    routes.add_row("[bold]total", f"[bold]{s.succeeded}", "", f"[bold]{usd(s.spend_usd)}")

    head = _grid()
    head.add_row("Jobs", jobs)
    head.add_row("Spend", f"{usd(s.spend_usd)} in total, exact, from the cost topic; by route:")
    lines = _grid()
    for b in s.baselines:
        lines.add_row("Versus", f"{b.name} ({b.route}): {usd(b.cost_usd)}{_saving(s.spend_usd, b.cost_usd)}")
    by_provider = ", ".join(f"{p} {n}" for p, n in sorted(s.rate_limited_by_provider.items()))
    lines.add_row("429s absorbed", f"{s.rate_limited}" + (f" ({by_provider})" if by_provider else ""))
    lines.add_row("Failovers", f"{s.failovers} ({s.jobs_failed_over} jobs moved to another route)")
    lines.add_row("Deferrals", f"{s.deferrals} parked on delay topics ({s.jobs_deferred} jobs)")
    lines.add_row("Attempts", f"{s.attempts} provider calls for {s.succeeded + s.failed} jobs")
    lines.add_row(
        "Latency", f"p50 {_seconds(s.latency_p50_s)} · p95 {_seconds(s.latency_p95_s)} (job created → result)"
    )
    lines.add_row(
        "DLQ",
        f"{s.dead_letters} record(s)"
        + (f" (the {s.broken_records_sent} broken lines sent on purpose)" if s.broken_records_sent else ""),
    )
    if s.ledger_total_usd is not None:
        verdict = "[green]equal[/]" if s.ledger_total_usd == s.spend_usd else "[bold red]DIFFERENT[/]"
        lines.add_row("Bill check", f"simulator ledger {usd(s.ledger_total_usd)} vs cost topic: {verdict}")
    if s.duplicate_results:
        lines.add_row(
            "Duplicates", f"{s.duplicate_results} repeated results (at-least-once; deduplicated by job id)"
        )
    lines.add_row("Results", f"{s.results_file}\n{s.costs_file}")
    lines.add_row("Logs", f"{s.out_dir} (worker.toml, worker-N.log)")
    lines.add_row("Wall time", f"{s.wall_time_s:.1f} s")
    notes = "\n".join(f"[dim]{b.name}: {b.definition}[/]" for b in s.baselines)
    return Panel(
        Group(head, routes, "", lines, "", notes),
        title=f"qroute demo · batch {s.batch_id} · {kind}",
        expand=False,
    )

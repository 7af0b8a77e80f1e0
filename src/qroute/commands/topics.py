"""`qroute topics create|check`: make or verify the topics a qroute deployment needs."""

from __future__ import annotations

import asyncio

import typer
from aiokafka.errors import KafkaError

from qroute.commands.options import BootstrapOption, ConfigOption, fail, settings_for
from qroute.kafka import KafkaConfigError
from qroute.worker.topics import TopicAdminError, create_topics, missing_topics, required_topics


def register(app: typer.Typer) -> None:
    topics_app = typer.Typer(help="Create or check the Kafka topics qroute uses.", no_args_is_help=True)
    app.add_typer(topics_app, name="topics")

    @topics_app.command("create")
    def create(config_path: ConfigOption = None, bootstrap: BootstrapOption = None) -> None:
        """Create the missing topics (jobs, results, costs, DLQ, delay tiers); existing ones are kept."""
        settings = settings_for(config_path, bootstrap)
        try:
            created = asyncio.run(create_topics(settings))
        except (KafkaConfigError, KafkaError, TopicAdminError) as exc:
            raise fail(str(exc) or type(exc).__name__) from None
        for spec in required_topics(settings):
            state = "created" if spec.name in created else "exists"
            typer.echo(f"{state:8} {spec.name} (partitions={spec.partitions}, rf={spec.replication_factor})")

    @topics_app.command("check")
    def check(config_path: ConfigOption = None, bootstrap: BootstrapOption = None) -> None:
        """List missing topics; exit code 1 when any is missing."""
        settings = settings_for(config_path, bootstrap)
        try:
            missing = asyncio.run(missing_topics(settings))
        except (KafkaConfigError, KafkaError) as exc:
            raise fail(str(exc) or type(exc).__name__) from None
        for spec in required_topics(settings):
            typer.echo(f"{'missing' if spec.name in missing else 'ok':8} {spec.name}")
        if missing:
            raise typer.Exit(1)

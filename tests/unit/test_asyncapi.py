"""AsyncAPI documents: the worker's channels come from settings, and both documents are exported to schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qroute.cli import app
from qroute.config import KafkaSettings, Settings, TopicSettings
from qroute.schemas_export import ASYNCAPI, DOCUMENT_BOOTSTRAP, export, render, stale
from qroute.worker.spec import worker_asyncapi

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"

CUSTOM = Settings(
    kafka=KafkaSettings(bootstrap_servers="kafka.acme:9093"),
    topics=TopicSettings(
        jobs="acme.in",
        results="acme.out",
        costs="acme.bill",
        dlq="acme.dead",
        delay_prefix="acme.wait",
        delay_tiers_s=[70, 7],
        reply_prefixes=["acme.out", "acme.replies."],
    ),
)

RECEIVE, SEND = "receive", "send"
EXPECTED_OPERATIONS = {
    ("acme.in", RECEIVE): "Job",
    ("acme.wait.7s", RECEIVE): "Job",
    ("acme.wait.70s", RECEIVE): "Job",
    ("acme.out", SEND): "Result",
    ("acme.bill", SEND): "CostRecord",
    ("acme.dead", SEND): "DeadLetter",
    ("acme.wait.7s", SEND): "Job",
    ("acme.wait.70s", SEND): "Job",
}
"""(topic, action) -> payload schema name, for `CUSTOM`."""


def resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    """Follow a local `#/a/b/c` reference (channel and message names contain ':' and '.', never '/')."""
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(topic, action) -> payload schema name of every operation in the document."""
    found: dict[tuple[str, str], str] = {}
    for operation in document["operations"].values():
        channel = resolve(document, operation["channel"]["$ref"])
        [message_ref] = operation["messages"]
        message = resolve(document, resolve(document, message_ref["$ref"])["$ref"])
        schema_ref = message["payload"]["$ref"]
        key = (channel["address"], operation["action"])
        assert key not in found, f"two operations for {key}"
        found[key] = schema_ref.removeprefix("#/components/schemas/")
    return found


def channel_for(document: dict[str, Any], address: str, action: str) -> dict[str, Any]:
    for operation in document["operations"].values():
        channel = resolve(document, operation["channel"]["$ref"])
        if channel["address"] == address and operation["action"] == action:
            return channel
    raise AssertionError(f"no {action} operation on {address}")


@pytest.fixture(scope="module")
def worker_doc() -> dict[str, Any]:
    return worker_asyncapi(CUSTOM)


class TestWorkerDocument:
    def test_is_asyncapi_3(self, worker_doc: dict[str, Any]) -> None:
        """The worker's document is AsyncAPI 3.0.0, titled as the worker, served by the configured broker."""
        assert worker_doc["asyncapi"] == "3.0.0"
        assert worker_doc["info"]["title"] == "qroute worker"
        assert [s["host"] for s in worker_doc["servers"].values()] == ["kafka.acme:9093"]

    def test_channels_are_the_configured_topics(self, worker_doc: dict[str, Any]) -> None:
        """Every channel address is a topic name from settings: jobs, results, costs, dlq and each delay tier."""
        addresses = {channel["address"] for channel in worker_doc["channels"].values()}
        assert addresses == {
            "acme.in",
            "acme.out",
            "acme.bill",
            "acme.dead",
            "acme.wait.7s",
            "acme.wait.70s",
        }

    def test_operations_have_the_right_action_and_payload(self, worker_doc: dict[str, Any]) -> None:
        """The worker receives Job from jobs and delay topics; sends Result, CostRecord, DeadLetter and parked Jobs."""
        assert operations(worker_doc) == EXPECTED_OPERATIONS

    @pytest.mark.parametrize(
        ("schema", "required"),
        [
            ("Job", {"id", "messages"}),
            ("Result", {"job_id", "status"}),
            ("CostRecord", {"job_id", "attempts", "total_cost_usd"}),
            ("DeadLetter", {"reason", "payload_b64"}),
        ],
    )
    def test_payload_schemas_are_the_wire_models(
        self, worker_doc: dict[str, Any], schema: str, required: set[str]
    ) -> None:
        """Each payload is the component schema of its qroute model, with that model's required fields."""
        component = worker_doc["components"]["schemas"][schema]
        assert required <= set(component["required"])
        assert required <= set(component["properties"])

    def test_descriptions_state_the_delivery_contract(self, worker_doc: dict[str, Any]) -> None:
        """Descriptions say who consumes jobs and how, which reply topics are allowed, and the delay header."""
        jobs = channel_for(worker_doc, "acme.in", RECEIVE)["description"]
        assert "aiokafka" in jobs
        assert "at-least-once" in jobs
        assert "acme.dead" in jobs
        results = channel_for(worker_doc, "acme.out", SEND)["description"]
        assert "reply_prefixes" in results
        assert "`acme.replies.`" in results
        assert "qroute-schema=result" in results
        assert "qroute-schema=cost_record" in channel_for(worker_doc, "acme.bill", SEND)["description"]
        assert "qroute-schema=dead_letter" in channel_for(worker_doc, "acme.dead", SEND)["description"]
        for action in (RECEIVE, SEND):
            assert "qroute-not-before" in channel_for(worker_doc, "acme.wait.7s", action)["description"]

    def test_descriptions_have_no_unfilled_placeholders(self, worker_doc: dict[str, Any]) -> None:
        """Header names are filled in (a missing f-prefix once left `{headers.NOT_BEFORE}` in the text)."""
        text = json.dumps(worker_doc)
        assert "{headers." not in text
        assert "qroute-not-before" in text

    def test_messages_claim_no_correlation_header(self, worker_doc: dict[str, Any]) -> None:
        """The worker's records carry no correlation_id header, so no message says they do."""
        messages = worker_doc["components"]["messages"].values()
        assert messages
        assert all("correlationId" not in message for message in messages)

    def test_repeated_tiers_give_one_channel_each(self) -> None:
        """A tier listed twice in settings is still one delay topic in the document."""
        settings = CUSTOM.model_copy(
            update={"topics": CUSTOM.topics.model_copy(update={"delay_tiers_s": [7, 7]})}
        )
        found = operations(worker_asyncapi(settings))
        assert sorted(key for key in found if key[0].startswith("acme.wait.")) == [
            ("acme.wait.7s", RECEIVE),
            ("acme.wait.7s", SEND),
        ]


class TestExport:
    def test_writes_both_documents(self, tmp_path: Path) -> None:
        """`export` writes asyncapi-client.json and asyncapi-worker.json, for the default topic names."""
        written = {path.name for path in export(tmp_path)}
        assert {"asyncapi-client.json", "asyncapi-worker.json"} <= written
        client = json.loads((tmp_path / "asyncapi-client.json").read_text(encoding="utf-8"))
        worker = json.loads((tmp_path / "asyncapi-worker.json").read_text(encoding="utf-8"))
        assert client["asyncapi"] == worker["asyncapi"] == "3.0.0"
        assert client["info"]["title"] == "qroute client"
        assert ("qroute.jobs", SEND) in operations(client)
        assert operations(worker)[("qroute.jobs", RECEIVE)] == "Job"
        assert [s["host"] for s in worker["servers"].values()] == [DOCUMENT_BOOTSTRAP]

    @pytest.mark.parametrize("name", list(ASYNCAPI))
    def test_files_are_stable_text(self, name: str) -> None:
        """Sorted keys, two-space indent and a trailing newline, like the JSON Schema files."""
        text = render(name)
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def test_fresh_export_is_not_stale(self, tmp_path: Path) -> None:
        """Right after an export, nothing is stale."""
        export(tmp_path)
        assert stale(tmp_path) == []

    def test_hand_edited_document_is_stale(self, tmp_path: Path) -> None:
        """An edited or missing AsyncAPI file is reported by `stale` and fails `qroute schemas check`."""
        export(tmp_path)
        path = tmp_path / "asyncapi-worker.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        document["info"]["title"] = "edited by hand"
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp_path / "asyncapi-client.json").unlink()
        assert stale(tmp_path) == ["asyncapi-client", "asyncapi-worker"]
        checked = CliRunner().invoke(app, ["schemas", "check", "--out", str(tmp_path)])
        assert checked.exit_code == 1
        assert "asyncapi-worker.json" in checked.stderr
        assert "asyncapi-client.json" in checked.stderr


class TestCommittedDocuments:
    @pytest.mark.parametrize("name", list(ASYNCAPI))
    def test_files_are_current(self, name: str) -> None:
        """Each checked-in AsyncAPI file equals what `qroute schemas export` writes now."""
        current = (SCHEMAS / f"{name}.json").read_text(encoding="utf-8")
        assert current == render(name), (
            f"schemas/{name}.json is stale: run `make schemas` and commit the result"
        )

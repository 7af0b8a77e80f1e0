"""JSON Schemas: generated from the models, checked in, and in agreement with pydantic on the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from typer.testing import CliRunner

from qroute.cli import app
from qroute.codec import DecodeFailure, decode_job
from qroute.models import WIRE_MODELS
from qroute.schemas_export import FILES, render, stale

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"
EXPECTED: dict[str, Any] = json.loads((EXAMPLES / "invalid_jobs.expected.json").read_text(encoding="utf-8"))
INVALID = sorted(p.name for p in EXAMPLES.glob("job.invalid.*.json"))


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


def load(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


class TestCheckedInSchemas:
    @pytest.mark.parametrize("name", list(WIRE_MODELS))
    def test_files_match_the_models(self, name: str) -> None:
        """Each checked-in schema equals the one generated from the models now."""
        current = (SCHEMAS / f"{name}.json").read_text(encoding="utf-8")
        assert current == render(name), (
            f"schemas/{name}.json is stale: run `make schemas` and commit the result"
        )

    @pytest.mark.parametrize("name", list(WIRE_MODELS))
    def test_schemas_are_valid_draft_2020_12(self, name: str) -> None:
        """Each file is itself a valid Draft 2020-12 schema and says so."""
        schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def test_outputs_list_every_field_as_required(self) -> None:
        """Consumers can rely on every Result field being present (null when empty)."""
        schema = json.loads((SCHEMAS / "result.json").read_text(encoding="utf-8"))
        assert set(schema["required"]) == set(schema["properties"])

    def test_job_defaults_are_optional(self) -> None:
        """Producers only have to send an id and messages."""
        schema = json.loads((SCHEMAS / "job.json").read_text(encoding="utf-8"))
        assert sorted(schema["required"]) == ["id", "messages"]


class TestExportCommand:
    def test_export_then_check(self, tmp_path: Path) -> None:
        """`qroute schemas export --out DIR` writes every file (JSON Schemas and AsyncAPI); `check` then passes, and fails on drift."""
        runner = CliRunner()
        exported = runner.invoke(app, ["schemas", "export", "--out", str(tmp_path)])
        assert exported.exit_code == 0, exported.output
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in FILES)
        assert set(WIRE_MODELS) < set(FILES)
        assert runner.invoke(app, ["schemas", "check", "--out", str(tmp_path)]).exit_code == 0
        (tmp_path / "job.json").write_text("{}\n", encoding="utf-8")
        assert stale(tmp_path) == ["job"]
        checked = runner.invoke(app, ["schemas", "check", "--out", str(tmp_path)])
        assert checked.exit_code == 1
        assert "make schemas" in checked.stderr

    def test_files_are_stable_text(self) -> None:
        """Sorted keys and a trailing newline, so regenerating gives byte-identical files."""
        text = render("cost_record")
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class TestValidExamples:
    @pytest.mark.parametrize("name", list(WIRE_MODELS))
    def test_schema_and_pydantic_accept(self, name: str) -> None:
        """The valid example of each contract passes both its JSON Schema and its pydantic model."""
        data = load(f"{name}.valid.json")
        assert list(validator(name).iter_errors(data)) == []
        WIRE_MODELS[name].model_validate(data)

    def test_valid_job_decodes(self) -> None:
        """The valid job example decodes exactly as the worker decodes a record."""
        assert not isinstance(decode_job((EXAMPLES / "job.valid.json").read_bytes()), DecodeFailure)


class TestInvalidJobs:
    def test_every_example_has_an_expectation(self) -> None:
        """Each invalid example has an expected message, and each expectation an example."""
        assert len(INVALID) >= 5
        assert set(INVALID) == set(EXPECTED) - {"_about"}

    @pytest.mark.parametrize("name", INVALID)
    def test_worker_rejects_with_expected_message(self, name: str) -> None:
        """decode_job turns the example into a schema_violation whose message has the expected fragment."""
        failure = decode_job((EXAMPLES / name).read_bytes())
        assert isinstance(failure, DecodeFailure)
        assert failure.reason == "schema_violation"
        assert EXPECTED[name]["decode"] in failure.message

    @pytest.mark.parametrize("name", [n for n in INVALID if EXPECTED.get(n, {}).get("schema")])
    def test_schema_rejects_at_the_same_field(self, name: str) -> None:
        """The JSON Schema rejects the example at the expected path with the expected message."""
        error = best_match(validator("job").iter_errors(load(name)))
        assert error is not None, f"{name} passes schemas/job.json"
        assert error.json_path == EXPECTED[name]["schema"]["path"]
        assert EXPECTED[name]["schema"]["message"] in error.message

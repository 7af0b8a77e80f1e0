"""JSON Schema files for the wire contracts, generated from the pydantic models.

Which side of the wire each file describes:
- `job.json` is the *validation* schema: what a producer may send. Fields with
  defaults are optional, and unknown fields are allowed (they are ignored).
- `result.json`, `cost_record.json`, `dead_letter.json` are *serialization*
  schemas: what a consumer receives. qroute always writes every field (null
  where there is no value, see `qroute.codec.encode`), so every property is
  listed as required; consumers can rely on the keys being there.

Next to them, the AsyncAPI 3.0 documents of both sides of the wire:
`asyncapi-client.json` (`qroute.client.spec`: what a producer publishes and reads)
and `asyncapi-worker.json` (`qroute.worker.spec`: what a worker reads and
publishes). They are rendered from default `Settings()` (default topic names),
with a placeholder broker address, so the files do not depend on who exports them.

Files are JSON with sorted keys, two-space indent and a trailing newline, so a
change to a model shows up as a small, stable diff (`make schemas`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from qroute.client.spec import client_asyncapi
from qroute.config import KafkaSettings, Settings
from qroute.models import WIRE_MODELS
from qroute.worker.spec import worker_asyncapi

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_OUT = Path("schemas")

SchemaMode = Literal["validation", "serialization"]

MODES: dict[str, SchemaMode] = {
    "job": "validation",
    "result": "serialization",
    "cost_record": "serialization",
    "dead_letter": "serialization",
}
"""Inputs are described as accepted, outputs as produced."""

DOCUMENT_BOOTSTRAP = "localhost:9092"
"""The server the AsyncAPI files name: default `Settings()` has none, and the documents need one."""

ASYNCAPI: dict[str, Callable[[Settings], dict[str, Any]]] = {
    "asyncapi-client": client_asyncapi,
    "asyncapi-worker": worker_asyncapi,
}
"""The AsyncAPI documents by file stem, each built from settings."""

FILES: list[str] = [*WIRE_MODELS, *ASYNCAPI]
"""Every file stem `export` writes and `stale` checks."""


class _EveryFieldPresent(GenerateJsonSchema):
    """In serialization mode, fields with defaults are still always written: mark them required."""

    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return field.get("serialization_exclude_if") is None
        return super().field_is_required(field, total)


def schema_for(name: str) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of one contract, by its name in `WIRE_MODELS`."""
    model: type[BaseModel] = WIRE_MODELS[name]
    schema = model.model_json_schema(mode=MODES[name], schema_generator=_EveryFieldPresent)
    return {"$schema": DRAFT, **schema}


def document_settings() -> Settings:
    """Default settings with the placeholder broker address: what the AsyncAPI files describe."""
    return Settings(kafka=KafkaSettings(bootstrap_servers=DOCUMENT_BOOTSTRAP))


def document_for(name: str) -> dict[str, Any]:
    """The content of `schemas/<name>.json`: a contract's JSON Schema or an AsyncAPI document."""
    if name in ASYNCAPI:
        return ASYNCAPI[name](document_settings())
    return schema_for(name)


def render(name: str) -> str:
    """The exact text of `schemas/<name>.json`."""
    return json.dumps(document_for(name), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Write every contract's schema and both AsyncAPI documents into `out_dir`; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        path = out_dir / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(out_dir: Path = DEFAULT_OUT) -> list[str]:
    """Names (file stems) of files in `out_dir` that are missing or differ from what `export` writes."""
    out: list[str] = []
    for name in FILES:
        path = out_dir / f"{name}.json"
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != render(name):
            out.append(name)
    return out

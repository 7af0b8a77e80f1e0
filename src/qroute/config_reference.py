"""The settings reference, rendered from the pydantic models so it cannot drift from them.

`qroute config reference` prints it; docs/configuration.md embeds it between
markers and a test fails when the embedded copy is stale.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from qroute.catalog.types import ModelSpec, ProviderSpec
from qroute.config import ENV_PREFIX, SECTIONS, Settings

BEGIN_MARKER = "<!-- BEGIN GENERATED: qroute config reference -->"
END_MARKER = "<!-- END GENERATED: qroute config reference -->"


def _type_name(field: FieldInfo) -> str:
    text = repr(field.annotation)
    if "Decimal" in text:  # qroute.money.Money, possibly optional
        return "decimal string | None" if ("None" in text or "Optional" in text) else "decimal string"
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    text = re.sub(r"\b(?:typing|pathlib|datetime|qroute\.[\w.]+)\.", "", text)
    return text.replace("NoneType", "None")


_FALLBACK_DOCS: dict[tuple[type[BaseModel], str], str] = {
    (ProviderSpec, "name"): "Provider name; in qroute.toml it is the table name and may be left out.",
    (
        ProviderSpec,
        "family",
    ): "API the provider speaks: openai (also OpenAI-compatible hosts), anthropic, gemini.",
    (ProviderSpec, "connect_timeout_s"): "TCP/TLS connect timeout per call.",
    (ProviderSpec, "read_timeout_s"): "Longest wait for response bytes per call.",
    (ProviderSpec, "total_timeout_s"): "Longest whole call, then it counts as a timeout.",
    (ProviderSpec, "anthropic_version"): "anthropic-version header (anthropic family only).",
    (ModelSpec, "provider"): "Name of a declared provider (shipped or [providers.NAME]).",
    (ModelSpec, "tier"): "1 small/fast, 2 mid, 3 strong, 4 frontier (jobs' constraints.min_tier).",
    (ModelSpec, "input_per_m"): 'USD per 1M uncached input tokens, as a string ("0.15").',
    (ModelSpec, "output_per_m"): "USD per 1M output tokens (reasoning tokens included).",
    (ModelSpec, "context_window"): "Tokens of input + max output that must fit (planner check).",
    (ModelSpec, "max_output_tokens"): "Largest output the model allows; job max_tokens is capped to it.",
    (ModelSpec, "capabilities"): "Any of json_mode, tools, vision.",
    (ModelSpec, "price_date"): "Date the price was read (YYYY-MM-DD).",
    (ModelSpec, "enabled"): "false keeps the entry but never routes to it.",
    (
        ModelSpec,
        "price_source",
    ): "Where the price was read; for a new model in qroute.toml it defaults to the file.",
}
"""Meanings for fields whose model (shared `catalog/types.py`) has no description."""


def field_doc(model: type[BaseModel], name: str) -> str:
    """The documented meaning of one field ("" when there is none)."""
    return model.model_fields[name].description or _FALLBACK_DOCS.get((model, name), "")


_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "min length"))


def _limits(field: FieldInfo) -> str:
    """Constraints such as `≥ 1`, read from the field's annotated-types metadata."""
    out = []
    for item in field.metadata:
        for attr, sign in _BOUNDS:
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            out.append(f"matches `{pattern}`")
    return ", ".join(out)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value: Any = field.default
    if value is PydanticUndefined and field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    if value is None:
        return "unset"
    if isinstance(value, frozenset):
        value = sorted(value)
    return "`" + json.dumps(value, default=str) + "`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_SPECIAL_ENV = {
    "providers": "`QROUTE_PROVIDERS__<NAME>__<FIELD>`",
    "models": "— (TOML only)",
}


def _table(model: type[BaseModel], env: str | None) -> list[str]:
    lines = [
        "| key | type | default | limits | environment variable | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a section: documented in its own table
        if env is None:
            var = "—"
        elif model is Settings and name in _SPECIAL_ENV:
            var = _SPECIAL_ENV[name]
        else:
            var = f"`{env}{name.upper()}`"
        cells = (f"`{_cell(_type_name(field))}`", _cell(_default(field)), _cell(_limits(field)), var)
        lines.append(f"| `{name}` | {' | '.join(cells)} | {_cell(field_doc(model, name))} |")
    return lines


def render_reference() -> str:
    """Markdown tables of every setting: key, type, default, environment variable, meaning."""
    out: list[str] = ["### Top level", "", *_table(Settings, ENV_PREFIX), ""]
    for section, model in SECTIONS.items():
        doc = (model.__doc__ or "").strip().splitlines()[0]
        out += [f"### [{section}]", "", doc, "", *_table(model, f"{ENV_PREFIX}{section.upper()}__"), ""]
    out += [
        "### [providers.NAME]",
        "",
        (ProviderSpec.__doc__ or "").strip(),
        "",
        *_table(ProviderSpec, f"{ENV_PREFIX}PROVIDERS__<NAME>__"),
        "",
        "### [[models]]",
        "",
        (ModelSpec.__doc__ or "").strip() + " Prices are USD per 1M tokens.",
        "",
        *_table(ModelSpec, None),
    ]
    return "\n".join(out) + "\n"


def splice_reference(document: str) -> str:
    """`document` with the text between the markers replaced by the current reference."""
    start = document.find(BEGIN_MARKER)
    end = document.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"the document has no {BEGIN_MARKER} … {END_MARKER} block")
    return f"{document[: start + len(BEGIN_MARKER)]}\n\n{render_reference()}\n{document[end:]}"

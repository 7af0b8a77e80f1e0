"""Write `Settings` as a `qroute.toml` file, so a worker subprocess (bench, demo) reads exactly what was built.

The stdlib reads TOML but does not write it, and the data here is plain JSON
(`model_dump(mode="json")`): strings, numbers, booleans, lists and tables. For
that subset a JSON string literal is a valid TOML basic string, so the writer
stays a few lines instead of a new dependency. `None` has no TOML form and is
left out, which means "default" to the loader.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qroute.config import Settings

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def settings_toml(settings: Settings) -> str:
    """The settings as a TOML document that `load_settings` reads back to equal settings."""
    data = settings.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return dumps(data)


def write_settings(settings: Settings, path: Path) -> Path:
    path.write_text(settings_toml(settings), encoding="utf-8")
    return path


def dumps(data: Mapping[str, Any]) -> str:
    """A TOML document for JSON-like data (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []
    _table(lines, (), data)
    return "\n".join(lines) + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    scalars = {k: v for k, v in table.items() if v is not None and not isinstance(v, Mapping)}
    scalars = {k: v for k, v in scalars.items() if not _is_table_array(v)}
    has_children = any(isinstance(v, Mapping) or _is_table_array(v) for v in table.values())
    if path and (scalars or not has_children):  # a parent of tables needs no header of its own
        lines.append(f"\n[{_dotted(path)}]")
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for key, value in table.items():
        if isinstance(value, Mapping):
            _table(lines, (*path, key), value)
    for key, value in table.items():
        if _is_table_array(value):
            for item in value:
                lines.append(f"\n[[{_dotted((*path, key))}]]")
                lines.extend(f"{_key(k)} = {_value(v)}" for k, v in item.items() if v is not None)


def _dotted(path: Sequence[str]) -> str:
    return ".".join(_key(part) for part in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON escapes are TOML escapes; DEL is the one control character JSON leaves raw.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")

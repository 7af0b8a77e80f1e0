"""Configuration errors: one exception whose message names the file, the field and the fix.

Kept apart from `qroute.config` so the catalog loader can raise it without an
import cycle (`config` builds on the catalog, not the other way round).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class ConfigError(ValueError):
    """A configuration that cannot work. The message is meant for the person who wrote it."""


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error becomes a `ConfigError` with line/column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found: check the path (or unset QROUTE_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the file ({exc}): check its permissions and encoding"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line L, column C)"; keep it, it says where to look.
        raise ConfigError(f"{path}: invalid TOML: {exc}: fix the syntax there") from None


def dotted(loc: Sequence[int | str]) -> str:
    """`("models", 2, "input_per_m")` → `models[2].input_per_m`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _advice(error: ErrorDetails) -> str:
    """What the user should do about one pydantic error."""
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key (a typo?): remove it or fix the spelling; see docs/configuration.md"
    if kind == "missing":
        return "required but missing: add it"
    if "float" in message and "money" in message:
        return 'prices must be decimal strings, not floats: write it quoted, e.g. "0.15"'
    return f"{message}: fix the value"


Location = tuple[int | str, ...]


def explain(
    exc: ValidationError,
    source: str | Callable[[Location], str],
    *,
    prefix: Location = (),
) -> ConfigError:
    """Turn a pydantic error into one readable `ConfigError`, one line per problem.

    `source` names where the values came from; a callable picks it per field
    (a value may come from the file or from an environment variable).
    """
    lines = []
    for error in exc.errors(include_url=False):
        # Validators add "function-after[...]" style steps to loc; they are noise for people.
        loc = (*prefix, *(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        where = source(loc) if callable(source) else source
        lines.append(f"{where}: {dotted(loc)}: {_advice(error)}")
    return ConfigError("\n".join(lines))

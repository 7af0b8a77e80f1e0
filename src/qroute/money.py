"""Exact money: USD amounts are `Decimal`, serialised as strings, never floats.

Prices in the catalog are USD per 1,000,000 tokens (the unit providers publish),
so a cost is `tokens * price_per_million / 1_000_000`, which `Decimal` computes
exactly for every price with a finite decimal expansion.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

ZERO = Decimal(0)
MILLION = Decimal(1_000_000)


def _no_floats(value: Any) -> Any:
    """Reject floats: 0.1 + 0.2 is not money. Strings and integers are exact."""
    if isinstance(value, float):
        raise ValueError('money must be a decimal string or an integer, not a float (write "0.15")')
    if isinstance(value, str | int | Decimal):
        return Decimal(value) if not isinstance(value, Decimal) else value
    raise ValueError('money must be a decimal string such as "0.15"')


def _non_negative(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("money must be a finite number")
    if value < 0:
        raise ValueError("money must not be negative")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_no_floats),
    AfterValidator(_non_negative),
    PlainSerializer(lambda d: format(d.normalize(), "f"), return_type=str, when_used="always"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]+(\.[0-9]+)?$",
            "description": "USD amount as an exact decimal string",
            "examples": ["0.000123"],
        }
    ),
]
"""A non-negative exact USD amount. JSON form: a decimal string such as "0.000123"."""


def per_million(tokens: int, price_per_million: Decimal) -> Decimal:
    """Exact cost of `tokens` at a USD-per-1M-tokens price."""
    return Decimal(tokens) * price_per_million / MILLION


def usd(value: Decimal) -> str:
    """Render a USD amount for people: exact, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return f"${text}"

"""Routing: offline token estimate, exact cost arithmetic, and the planner.

`plan(job, routes, health)` is the one entry point the attempt loop needs;
`cost_of(usage, model)` prices what a provider reports after a call.
"""

from qroute.routing.cost import cost_of, estimate_cost
from qroute.routing.planner import Plan, RouteEstimate, RouteVerdict, plan
from qroute.routing.tokens import estimate_input_tokens, estimate_text_tokens, expected_output_tokens

__all__ = [
    "Plan",
    "RouteEstimate",
    "RouteVerdict",
    "cost_of",
    "estimate_cost",
    "estimate_input_tokens",
    "estimate_text_tokens",
    "expected_output_tokens",
    "plan",
]

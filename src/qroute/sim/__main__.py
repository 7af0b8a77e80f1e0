"""`python -m qroute.sim [--config FILE] [--host H] [--port N] [--ready-file PATH]`.

The entry `run_in_subprocess` starts; people use `qroute sim`, which takes the same options.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from qroute.config_errors import ConfigError
from qroute.sim.config import default_config, load_sim_config
from qroute.sim.run import serve, write_ready_file
from qroute.sim.server import SimServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qroute.sim", description="qroute provider simulator")
    parser.add_argument("--config", type=Path, help="TOML or JSON config (default: the built-in one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ready-file", type=Path, help="write {port, pid, url} here once serving")
    args = parser.parse_args(argv)
    try:
        config = load_sim_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ready_file: Path | None = args.ready_file

    def ready(sim: SimServer) -> None:
        if ready_file is not None:
            write_ready_file(ready_file, sim)
        print(f"qroute sim serving on {sim.url}", file=sys.stderr, flush=True)

    asyncio.run(serve(config, args.host, args.port, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())

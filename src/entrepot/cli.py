"""The `entrepot` command line."""

from __future__ import annotations

import argparse
import sys

from entrepot import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="entrepot", description=__doc__)
    parser.add_argument("--version", action="version", version=f"entrepot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the registry")
    serve.add_argument("config", nargs="?", help="Distribution-style config.yml")
    args = parser.parse_args(argv)
    if args.command == "serve":
        print("entrepot: the HTTP API is not built yet; it would serve 0.0.0.0:5000 from ./data")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())

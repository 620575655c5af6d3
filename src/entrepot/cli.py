"""The `entrepot` command line: `entrepot serve` starts the registry."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, Final

from entrepot import __version__, logs
from entrepot.api import App, Context
from entrepot.storage.cache.memory import InMemoryBlobDescriptorCache
from entrepot.storage.driver.filesystem import FilesystemDriver
from entrepot.storage.registry import Registry

log = logging.getLogger("entrepot")

_SETTINGS_ENV: Final = "ENTREPOT_SERVE_SETTINGS"


def create_app() -> App:
    """Build the application from the settings `serve` put in the environment
    (each worker process builds its own)."""
    settings: dict[str, Any] = json.loads(os.environ.get(_SETTINGS_ENV, "{}"))
    logs.configure(settings.get("log_level", "info"), settings.get("log_formatter", "text"))
    driver = FilesystemDriver(settings.get("root", "./data"))
    # An in-memory cache of links is per process: with several workers a
    # delete in one would not be seen by the others, so only one worker
    # caches (the shared Redis cache is the multi-process answer).
    cache = InMemoryBlobDescriptorCache() if settings.get("workers", 1) == 1 else None
    registry = Registry(driver, cache, delete_enabled=settings.get("delete", True))
    return App(Context(registry))


def serve(args: argparse.Namespace) -> int:
    if args.config is not None:
        print(
            "entrepot: configuration files are not supported yet; use --root, --addr, --workers",
            file=sys.stderr,
        )
        return 2
    host, _, port = args.addr.rpartition(":")
    settings = {"root": os.path.abspath(args.root), "workers": args.workers}
    os.environ[_SETTINGS_ENV] = json.dumps(settings)
    logs.configure("info", "text")
    log.info(
        "entrepot %s listening on %s, storing under %s (%s, %d worker%s)",
        __version__,
        args.addr,
        settings["root"],
        args.server,
        args.workers,
        "" if args.workers == 1 else "s",
    )
    if args.server == "granian":
        _serve_granian(host or "0.0.0.0", int(port), args.workers)
    else:
        _serve_uvicorn(host or "0.0.0.0", int(port), args.workers)
    return 0


def _serve_granian(host: str, port: int, workers: int) -> None:
    # Granian (Rust, hyper) implements the ASGI pathsend extension: a blob
    # GET is sent from the file by the server, never through Python.
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        "entrepot.cli:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        websockets=False,
        log_level=LogLevels.warning,
    ).serve()


def _serve_uvicorn(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run(
        "entrepot.cli:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=30,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="entrepot", description="A container image registry (OCI Distribution, Docker V2)."
    )
    parser.add_argument("--version", action="version", version=f"entrepot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve the registry over HTTP")
    run.add_argument("config", nargs="?", help="a Distribution-style config.yml (not yet)")
    run.add_argument("--root", default="./data", help="filesystem storage root (./data)")
    run.add_argument("--addr", default="0.0.0.0:5000", help="host:port to listen on")
    run.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    run.add_argument(
        "--server",
        choices=("granian", "uvicorn"),
        default="granian",
        help="HTTP server: granian (default; sends blobs from files) or uvicorn",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""The `entrepot` command line.

`entrepot serve [CONFIG]` starts the registry from Distribution's config.yml
(or the embedded default), `entrepot config check CONFIG` validates a file
and prints the effective settings with secrets masked, and `entrepot
purge-uploads [CONFIG]` removes abandoned upload sessions now.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import json
import logging
import os
import socket
import ssl
import sys
import threading
from datetime import timedelta
from typing import Any, Final

import yaml

from entrepot import __version__, logs, memory, metrics
from entrepot.api import App
from entrepot.config import (
    ConfigError,
    LoadedConfig,
    Settings,
    load_config,
    masked,
    split_host_port,
)
from entrepot.debug import DebugServer, start_debug_server
from entrepot.storage.driver.base import close_driver
from entrepot.storage.purge import PurgeReport, purge_uploads
from entrepot.wiring import build_app, build_driver, metrics_enabled

log = logging.getLogger("entrepot")

# How `serve` tells each worker process what to build.
_SERVE_ENV: Final = "ENTREPOT_SERVE"
# Distribution waits a random part of this before the first upload purge, so
# instances started together do not purge together.
_PURGE_JITTER: Final = timedelta(minutes=60)


def create_app() -> App:
    """Build the application in a worker process, from what `serve` passed."""
    plan: dict[str, Any] = json.loads(os.environ.get(_SERVE_ENV, "{}"))
    settings = load_config(plan.get("config"), os.environ).settings
    return _app(settings, plan.get("workers", 1))


def _app(settings: Settings, workers: int) -> App:
    _configure_logging(settings)
    if metrics_enabled(settings):
        metrics.enable()  # into the directory `serve` made for the workers
    app = build_app(settings, workers)
    # Everything made so far (modules, the configuration, the app) lives as
    # long as the process: out of the collector's sight, so that its full
    # collections, triggered by requests, do not walk it each time (about
    # 9 ms here, seen in the p99 latency of one client's catalog walks).
    gc.collect()
    gc.freeze()
    memory.trim_now()  # the imports' and the configuration's temporaries
    return app


def _configure_logging(settings: Settings) -> None:
    logs.configure(settings.log.level, settings.log.formatter, settings.log.fields)


def _load(path: str | None) -> LoadedConfig | None:
    try:
        return load_config(path, os.environ)
    except ConfigError as exc:
        print(f"entrepot: invalid configuration: {exc}", file=sys.stderr)
        return None


def _listen_address(addr: str) -> tuple[str, int]:
    """The IP address and port to bind for `http.addr` (already checked by
    the configuration). granian binds IP addresses only: a host name is
    resolved, and Go too listens on one address of a name."""
    host, port = split_host_port(addr)
    if not host:
        return "0.0.0.0", port
    if not _is_ip_literal(host):
        host = str(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    return host, port


def _is_ip_literal(host: str) -> bool:
    """An IPv4 or IPv6 address (with or without an IPv6 zone: fe80::1%eth0)."""
    address = host.partition("%")[0]
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
        except OSError:
            continue
        return True
    return False


def _cannot_listen(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (in use, not an address of
    this machine...), found before the server starts and fails on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def _tls_problem(settings: Settings) -> str | None:
    """A TLS file that cannot be read, or a certificate and key that do not
    go together: said in one line naming the key, before the server starts."""
    tls = settings.http.tls
    files = [("http.tls.certificate", tls.certificate), ("http.tls.key", tls.key)]
    files += [(f"http.tls.clientcas[{index}]", path) for index, path in enumerate(tls.clientcas)]
    for key, path in files:
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            return f"{key}: cannot read {path}: {exc.strerror or exc}"
    if tls.certificate is not None and tls.key is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(tls.certificate, tls.key)
        except ssl.SSLError as exc:
            return (
                f"http.tls.certificate: {tls.certificate} with http.tls.key {tls.key} is not "
                f"a certificate and its key: {exc.reason or exc}"
            )
    return None


def serve(args: argparse.Namespace) -> int:
    # Command-line shortcuts are environment overrides, so every worker
    # (which reads the configuration again) sees them too.
    if args.root is not None:
        os.environ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = os.path.abspath(args.root)
    if args.addr is not None:
        os.environ["REGISTRY_HTTP_ADDR"] = args.addr
    if args.debug_addr is not None:
        os.environ["REGISTRY_HTTP_DEBUG_ADDR"] = args.debug_addr
        os.environ["REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED"] = "true"
    loaded = _load(args.config)
    if loaded is None:
        return 2
    settings = loaded.settings
    _configure_logging(settings)
    for warning in loaded.warnings:
        log.warning("configuration: %s", warning)
    try:
        host, port = _listen_address(settings.http.addr)
    except OSError as exc:  # a host name that does not resolve
        problem = f"http.addr: cannot resolve {settings.http.addr!r}: {exc.strerror or exc}"
        print(f"entrepot: invalid configuration: {problem}", file=sys.stderr)
        return 2
    tls_problem = _tls_problem(settings)
    if tls_problem is not None:
        print(f"entrepot: invalid configuration: {tls_problem}", file=sys.stderr)
        return 2
    listen_problem = _cannot_listen(host, port)
    if listen_problem is not None:
        print(f"entrepot: {listen_problem}", file=sys.stderr)
        return 1
    server = _server(args.server, settings)
    for problem in _not_honoured(settings, server):
        log.warning("configuration: %s", problem)
    os.environ[_SERVE_ENV] = json.dumps({"config": args.config, "workers": args.workers})
    storage = settings.storage
    where = (
        storage.driver_parameters().get("rootdirectory", "")
        if storage.driver == "filesystem"
        else ""
    )
    log.info(
        "entrepot %s listening on %s:%d (%s, %s), storage %s%s, %d worker%s, %s",
        __version__,
        host,
        port,
        "https" if settings.http.tls.enabled else "http",
        server,
        storage.driver,
        f" under {os.path.abspath(where)}" if where else "",
        args.workers,
        "" if args.workers == 1 else "s",
        f"configuration {loaded.source}" if loaded.source else "embedded configuration",
    )
    # Before any worker starts: each records its metrics there.
    metrics_dir = metrics.setup_multiprocess_dir() if metrics_enabled(settings) else None
    try:
        debug, debug_problem = _start_debug_server(settings)
        if debug_problem is not None:
            print(f"entrepot: {debug_problem}", file=sys.stderr)
            return 1
        _start_upload_purging(settings)
        try:
            if server == "granian":
                _serve_granian(settings, host, port, args.workers)
            elif server == "uvicorn":
                _serve_uvicorn(settings, host, port, args.workers)
            else:
                return _serve_builtin(settings, host, port, args.workers)
        finally:
            if debug is not None:
                debug.stop()
    finally:
        if metrics_dir is not None:
            metrics_dir.cleanup()
    return 0


def _start_debug_server(settings: Settings) -> tuple[DebugServer | None, str | None]:
    """The debug listener of `http.debug.addr` (health, metrics), in this main
    process: one for all the workers. None if not configured; or why it
    cannot listen."""
    debug = settings.http.debug
    if not debug.addr:
        return None, None
    try:
        host, port = split_host_port(debug.addr)
        server = start_debug_server(
            host,
            port,
            build_driver(settings),
            settings.health.storagedriver,
            debug.prometheus.path if debug.prometheus.enabled else None,
        )
    except ValueError as exc:
        return None, f"invalid configuration: http.debug: {exc}"
    except OSError as exc:
        return None, f"cannot listen on {debug.addr} (http.debug.addr): {exc.strerror or exc}"
    return server, None


def _not_honoured(settings: Settings, server: str) -> list[str]:
    """Settings entrepot reads but cannot honour (yet), said out loud."""
    problems = []
    if settings.http.net == "unix":
        problems.append("http.net unix is not supported yet; listening on TCP")
    if server != "granian" and _http2(settings):
        problems.append(f"{server} serves HTTP/1.1 only (use --server granian for HTTP/2)")
    tls = settings.http.tls
    if tls.ciphersuites:
        problems.append("http.tls.ciphersuites is not honoured: the server's defaults apply")
    if tls.clientcas and tls.clientauth != "require-and-verify-client-cert":
        problems.append("http.tls.clientauth: client certificates are always required and verified")
    if tls.enabled and server == "uvicorn" and tls.minimumtls != "tls1.2":
        problems.append("http.tls.minimumtls is not applied by uvicorn (use --server granian)")
    if tls.enabled and server == "builtin" and tls.minimumtls in ("tls1.0", "tls1.1"):
        problems.append(
            f"http.tls.minimumtls {tls.minimumtls}: OpenSSL's default security level "
            "allows TLS 1.2 at the least"
        )
    return problems


def _server(choice: str, settings: Settings) -> str:
    """The HTTP server to run. `auto`: entrepot's own (`entrepot.httpserver`)
    for plain HTTP, whose blob GETs are zero-copy; granian for TLS (no
    server can send a file as it is over TLS, and granian speaks HTTP/2) and
    for h2c."""
    if choice != "auto":
        return choice
    return "granian" if settings.http.tls.enabled or _http2(settings) else "builtin"


def _http2(settings: Settings) -> bool:
    """Whether to speak HTTP/2 as Distribution does: over TLS (negotiated)
    unless `http.http2.disabled`; in clear text only with `http.h2c.enabled`."""
    if settings.http.tls.enabled:
        return not settings.http.http2.disabled
    return settings.http.h2c.enabled


def _tls_files(settings: Settings) -> tuple[str | None, str | None, str | None]:
    """Certificate, key, and one file of all client CAs (or None)."""
    tls = settings.http.tls
    if not tls.enabled:
        return None, None, None
    ca_file = None
    if tls.clientcas:
        import shutil
        import tempfile

        handle, ca_file = tempfile.mkstemp(prefix="entrepot-clientcas-", suffix=".pem")
        atexit.register(os.unlink, ca_file)
        with os.fdopen(handle, "wb") as out:
            for path in tls.clientcas:
                with open(path, "rb") as ca:
                    shutil.copyfileobj(ca, out)
                out.write(b"\n")
    return tls.certificate, tls.key, ca_file


def _serve_granian(settings: Settings, host: str, port: int, workers: int) -> None:
    # Granian (Rust, hyper) implements the ASGI pathsend extension: a blob
    # GET is sent from the file by the server, never through Python.
    from pathlib import Path

    from granian.constants import HTTPModes, Interfaces, SSLProtocols
    from granian.log import LogLevels

    certificate, key, client_cas = _tls_files(settings)
    drain = settings.http.draintimeout.total_seconds()
    options: dict[str, Any] = {
        "address": host,
        "port": port,
        "interface": Interfaces.ASGI,
        "http": HTTPModes.auto if _http2(settings) else HTTPModes.http1,
        "websockets": False,
        "log_level": LogLevels.warning,
    }
    if certificate is not None and key is not None:
        options.update(
            ssl_cert=Path(certificate),
            ssl_key=Path(key),
            # granian knows TLS 1.2 and 1.3; older minimums mean 1.2.
            ssl_protocol_min=SSLProtocols.tls13
            if settings.http.tls.minimumtls == "tls1.3"
            else SSLProtocols.tls12,
        )
        if client_cas is not None:
            options.update(ssl_ca=Path(client_cas), ssl_client_verify=True)
    kill_timeout = int(drain) if drain >= 1 else None
    if workers == 1:
        _serve_granian_here(settings, options, kill_timeout)
        return

    from granian import Granian
    from granian.constants import Loops

    Granian(
        "entrepot.cli:create_app",
        factory=True,
        workers=workers,
        loop=Loops.uvloop,
        workers_kill_timeout=kill_timeout,
        **options,
    ).serve()


def _serve_granian_here(
    settings: Settings, options: dict[str, Any], kill_timeout: int | None
) -> None:
    """One worker: granian's embedded server, in this process on its event
    loop, rather than a supervisor process and a worker process (which
    would double the memory of an idle registry)."""
    import signal

    import uvloop
    from granian.server.embed import Server

    logging.getLogger("_granian").addFilter(_NotExperimental())

    async def run() -> None:
        server = Server(lambda: _app(settings, 1), factory=True, **options)
        server.workers_kill_timeout = kill_timeout
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, server.stop)
        try:
            await server.serve()
        except TimeoutError:
            log.warning("requests still running after http.draintimeout: cut off")
            # What follows is the cancellation of those requests (granian
            # reports each one, and its own shutdown callback firing late):
            # expected now, and said once above.
            logging.getLogger("_granian").setLevel(logging.CRITICAL)
            loop.set_exception_handler(lambda loop, context: None)

    uvloop.run(run())


class _NotExperimental(logging.Filter):
    """Drops granian's warning that its embedded server is experimental: the
    whole suite runs on it, and an operator can do nothing about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "experimental" not in record.getMessage()


def _serve_builtin(settings: Settings, host: str, port: int, workers: int) -> int:
    from entrepot import httpserver

    return httpserver.run(
        lambda: _app(settings, workers),
        host,
        port,
        workers,
        settings.http.draintimeout.total_seconds(),
        (lambda: _ssl_context(settings)) if settings.http.tls.enabled else None,
    )


# Below 1.2, OpenSSL's default security level refuses anyway (said at start).
_TLS_VERSIONS: Final = {"tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS side of `http.tls` for entrepot's own server: HTTP/1.1, the
    minimum version, and client certificates required when CAs are given."""
    tls = settings.http.tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tls.certificate), str(tls.key))  # both set: tls.enabled
    context.minimum_version = _TLS_VERSIONS.get(tls.minimumtls, ssl.TLSVersion.TLSv1_2)
    context.set_alpn_protocols(["http/1.1"])
    for path in tls.clientcas:
        context.load_verify_locations(path)
    if tls.clientcas:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _serve_uvicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    import ssl

    import uvicorn

    certificate, key, client_cas = _tls_files(settings)
    uvicorn.run(
        "entrepot.cli:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # httptools, plus zero-copy blob GETs (the pathsend extension).
        http="entrepot.zerocopy:PathsendProtocol",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=int(settings.http.draintimeout.total_seconds()) or None,
        ssl_certfile=certificate,
        ssl_keyfile=key,
        ssl_ca_certs=client_cas,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_cas else ssl.CERT_NONE,
    )


def _start_upload_purging(settings: Settings) -> None:
    """Purge abandoned uploads in the background of the main process: once
    per server, whatever the number of workers."""
    purging = settings.storage.maintenance.uploadpurging
    if not purging.enabled or settings.storage.maintenance.readonly.enabled:
        return

    # Built here, in the main thread: granian and entrepot's own server fork
    # workers while the purge thread runs (the latter also later, to replace
    # one), and a fork during the thread's import of a module would leave
    # that module's import lock held for ever in the worker. The purge
    # imports nothing once the driver is built (the filesystem driver
    # removes trees with os calls, not shutil).
    driver = build_driver(settings)

    async def loop() -> None:
        # A uniform fraction from the system's randomness (no `random` module
        # kept in memory for one number).
        fraction = int.from_bytes(os.urandom(7), "big") / (1 << 56)
        await asyncio.sleep(fraction * _PURGE_JITTER.total_seconds())
        while True:
            try:
                await purge_uploads(driver, purging.age, dry_run=purging.dryrun)
            except Exception:
                log.exception("upload purge failed")
            await asyncio.sleep(purging.interval.total_seconds())

    thread = threading.Thread(target=asyncio.run, args=(loop(),), daemon=True, name="purge")
    thread.start()


def config_check(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return 2
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(yaml.safe_dump(masked(loaded.settings), sort_keys=False), end="")
    return 0


def purge(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return 2
    settings = loaded.settings
    _configure_logging(settings)
    purging = settings.storage.maintenance.uploadpurging
    age = purging.age if args.age is None else timedelta(hours=args.age)
    dry_run = args.dry_run or purging.dryrun
    tty = sys.stderr.isatty()

    def progress(report: PurgeReport) -> None:
        if tty:
            verb = "would purge" if dry_run else "purged"
            print(
                f"\r{report.examined} sessions examined, {len(report.purged)} {verb}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    async def run() -> PurgeReport:
        driver = build_driver(settings)
        try:
            return await purge_uploads(driver, age, dry_run=dry_run, progress=progress)
        finally:
            await close_driver(driver)

    report = asyncio.run(run())
    if tty:
        print(file=sys.stderr)
    for session in report.purged:
        print(session)
    return 1 if report.errors else 0


def _worker_count(text: str) -> int:
    count = int(text)  # ValueError: argparse says "invalid _worker_count value"
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least 1, got {count}")
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="entrepot",
        description="A container image registry: OCI Distribution and Docker's Registry API "
        "V2, on CNCF Distribution's storage layout and config.yml.",
    )
    parser.add_argument("--version", action="version", version=f"entrepot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "serve",
        help="serve the registry",
        description="Serve the registry. Without CONFIG: filesystem storage under ./data, "
        "in-memory descriptor cache, port 5000, deletes enabled. REGISTRY_* environment "
        "variables override the configuration as in Distribution.",
    )
    run.add_argument("config", nargs="?", help="Distribution's config.yml (version 0.1)")
    run.add_argument("--root", help="filesystem storage root (overrides the configuration)")
    run.add_argument("--addr", help="HOST:PORT to listen on (overrides http.addr)")
    run.add_argument(
        "--workers", type=_worker_count, default=1, help="worker processes (default 1)"
    )
    run.add_argument(
        "--debug-addr",
        help="HOST:PORT of the debug listener: /debug/health and Prometheus /metrics "
        "(overrides http.debug.addr and turns http.debug.prometheus on)",
    )
    run.add_argument(
        "--server",
        choices=("auto", "builtin", "granian", "uvicorn"),
        default="auto",
        help="HTTP server: builtin (entrepot's own, HTTP/1.1, blob GETs sent with sendfile), "
        "granian (HTTP/2) or uvicorn; auto (default): granian for TLS and h2c, else builtin",
    )

    config = sub.add_parser("config", help="work with configuration files")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser(
        "check", help="validate a config.yml and print the effective settings (secrets masked)"
    )
    check.add_argument("config", nargs="?", help="config.yml (default: the embedded one)")

    purger = sub.add_parser(
        "purge-uploads", help="remove upload sessions older than the purge age, now"
    )
    purger.add_argument("config", nargs="?", help="config.yml (default: the embedded one)")
    purger.add_argument("--age", type=float, help="age in hours (default: uploadpurging.age)")
    purger.add_argument("--dry-run", action="store_true", help="only list what would go")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "config":
        return config_check(args)
    return purge(args)


if __name__ == "__main__":
    sys.exit(main())

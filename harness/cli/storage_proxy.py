"""``harness storage-proxy``: serve a study storage to many workers (``grpc://HOST:PORT``)."""

from __future__ import annotations

import argparse

from harness.cli.errors import UsageError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def command(args: argparse.Namespace) -> int:
    """Serve ``args.storage`` on ``args.host:args.port`` until Ctrl-C or SIGTERM."""
    from harness.study.proxy_server import check_port, serve_storage_proxy
    from harness.util.notices import notice

    try:
        check_port(args.port)
    except ValueError as error:
        raise UsageError(str(error)) from None

    def ready(line: str) -> None:
        print(line, flush=True)
        if args.host not in LOCAL_HOSTS:
            notice(
                f"the storage proxy listens on {args.host}, beyond this machine, with no "
                "authentication: keep that network private"
            )

    serve_storage_proxy(args.storage, args.host, args.port, on_ready=ready)
    return 0

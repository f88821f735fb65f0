"""Listening sockets of the commands that serve HTTP: `trackflow server`, `trackflow ui` and
`trackflow models serve`.

One port rule for all three (`port_number`, `check_port`: 1-65535, or 0 for any free port),
one way to bind (`bind`), and the address they announce is read back from the bound socket
(`socket_url`), so it is always the one actually listened on. uvicorn then serves on that
socket (`serve`). Importing this module is cheap: uvicorn loads when `serve` runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from typing import Any

from tracking.errors import InvalidParameterError, TrackingError

MAX_PORT = 65535
PORT_RULE = "use 1-65535, or 0 for any free port"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ALLOWED_HOSTS_HELP = (
    "comma-separated Host header values to answer (fnmatch patterns, '*' = any), against DNS "
    "rebinding; other names get 403. Default: localhost, 127.0.0.1 and [::1] (any port) when "
    "listening on a loopback address, else any"
)


class ListenError(TrackingError):
    """The address cannot be listened on (port taken, unknown host, no permission)."""


def check_port(port: object) -> int:
    """`port` if it is an integer in 0..65535 (0: the system picks a free port), else a clear
    InvalidParameterError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= MAX_PORT:
        raise InvalidParameterError(f"Invalid port {port!r}: {PORT_RULE}")
    return port


def port_number(text: str) -> int:
    """argparse type of every --port option: `check_port` on the command line's text."""
    try:
        return check_port(int(text.strip()))
    except (ValueError, InvalidParameterError):
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: {PORT_RULE}") from None


def is_loopback(host: str) -> bool:
    """Whether `host` (a listening address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(option: str | None, listen_host: str) -> list[str]:
    """The Host header patterns to answer: the --allowed-hosts list, else the loopback names
    when listening on a loopback address, else any ("*")."""
    if option:
        hosts = [h.strip() for h in option.split(",") if h.strip()]
        if hosts:
            return hosts
    return list(LOOPBACK_HOSTS) if is_loopback(listen_host) else ["*"]


def add_allowed_hosts_option(parser: argparse.ArgumentParser) -> None:
    """--allowed-hosts, as `trackflow server` and `trackflow ui` take it."""
    parser.add_argument("--allowed-hosts", metavar="HOSTS", help=ALLOWED_HOSTS_HELP)


def _address(host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    """(family, socket address) to bind: an IP literal as given, a name resolved (IPv4 first,
    as `localhost` should mean 127.0.0.1)."""
    name = host.strip("[]") or None
    try:
        infos = socket.getaddrinfo(
            name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as e:
        raise ListenError(f"Cannot listen on {host}:{port}: unknown address ({e})") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, address = infos[0]
    return family, address


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), inheritable by worker processes; port 0 lets the
    system pick a free one. ListenError (a TrackingError) names the address and the cause."""
    check_port(port)
    family, address = _address(host, port)
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on connections accepted
    # from a socket marked as TCP (else +40 ms per keep-alive request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ListenError(
            f"Cannot listen on {host}:{port}: {e.strerror or e}; is another server using it? "
            "Choose another port with --port (0 picks a free one)"
        ) from None
    sock.set_inheritable(True)
    return sock


def url(host: str, port: int) -> str:
    """http://host:port, with IPv6 addresses in brackets."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def socket_url(sock: socket.socket) -> str:
    """The URL of the address `sock` really listens on (the port the system chose for 0)."""
    host, port = sock.getsockname()[:2]
    return url(host, port)


def uvicorn_config(app: Any, sock: socket.socket, **options: Any) -> Any:
    """A uvicorn.Config for `app` on the bound `sock` (its log lines name the real port)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    return uvicorn.Config(app, host=host, port=port, **options)


def serve(app: Any, sock: socket.socket, **options: Any) -> None:
    """Serve `app` with uvicorn on the bound `sock` until Ctrl+C or SIGTERM, then close it.
    `options` are uvicorn.Config's."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, sock, **options))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it shut down for
        pass
    finally:
        sock.close()

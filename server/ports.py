"""Whether the server's port is free: checked before `make run` or `splitwerk serve` does anything.

Standard library only, so that `make run` can ask (``python3 -m server.ports HOST PORT``) before
it installs anything, and `splitwerk serve` before it creates secrets, starts Redis or makes
demo data.
"""

from __future__ import annotations

import errno
import socket
import sys


def taken_port_message(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, with how to choose another; None when free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as gunicorn binds: a port in TIME_WAIT after a restart counts as free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = "is taken" if error.errno == errno.EADDRINUSE else f"cannot be used ({error})"
            other = port + 1 if port < 65535 else 8000
            return (
                f"port {port} on {host} {reason}: another server may be running there. "
                f"Choose another port: `make run PORT={other}` or "
                f"`splitwerk serve --port {other}` (or SPLITWERK_PORT={other})."
            )
    return None


def main(arguments: list[str]) -> int:
    """``python -m server.ports HOST PORT``: exit 1 with the message when the port is taken."""
    host, port = arguments[0], int(arguments[1])
    message = taken_port_message(host, port)
    if message is None:
        return 0
    print(f"Error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

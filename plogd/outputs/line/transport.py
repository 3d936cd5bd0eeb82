"""Where the line output's lines go: a kept TCP or unix-socket connection, or UDP datagrams.

A stream transport connects in `open()` (or on the next send after a failure), writes a
batch and waits until the kernel has taken it, within `timeout` seconds; any failure closes
the connection and raises OutputDown, so that the runner sends the whole batch again. The
plaintext protocols have no acknowledgment: a receiver that dies after taking a batch into
its socket loses it, as it would for any sender. What can be seen before writing is seen:
a connection the receiver has closed is replaced by a new one first.
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from plogd.outputs.base import OutputDown

URL_FORMS = "tcp://HOST:PORT, udp://HOST:PORT or unix:///PATH"
MAX_UDP_PAYLOAD = 65507       # an IPv4 UDP datagram's largest payload


@dataclass(frozen=True)
class Address:
    scheme: str               # tcp, udp, unix
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.scheme == "unix" \
            else f"{self.scheme}://{self.host}:{self.port}"


def parse_url(url: object) -> Address:
    """The address of `url`; ValueError saying what is accepted when it is not one."""
    bad = ValueError(f"url: {url!r} is not an address; accepted: {URL_FORMS}")
    if not isinstance(url, str):
        raise bad
    parts = urlsplit(url)
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/") or parts.path == "/":
            raise bad
        return Address("unix", path=parts.path)
    if parts.scheme not in ("tcp", "udp") or parts.path not in ("", "/") or parts.query:
        raise bad
    try:
        port = parts.port
    except ValueError:
        raise bad from None
    if not parts.hostname or not port:
        raise bad
    return Address(parts.scheme, host=parts.hostname, port=port)


def datagrams(lines: list[bytes], limit: int) -> list[bytes]:
    """Whole lines packed into datagrams of at most `limit` bytes; a line is never cut: one
    longer than `limit` travels alone."""
    packed: list[bytes] = []
    current = b""
    for line in lines:
        if current and len(current) + len(line) > limit:
            packed.append(current)
            current = b""
        current += line
    if current:
        packed.append(current)
    return packed


class _Connection:
    """A connected stream and a second handle on its socket, to look at the socket's state
    without reading from it."""

    def __init__(self, writer: asyncio.StreamWriter):
        self.writer = writer
        self.probe = writer.get_extra_info("socket").dup()

    def closed_by_peer(self) -> bool:
        """Whether the receiver has closed or reset the connection (a pending FIN or RST),
        seen in the kernel now rather than when the event loop next polls."""
        try:
            return self.probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False              # open, nothing received: the usual case
        except OSError:
            return True

    def abort(self) -> None:
        """Closes at once, giving up what is still buffered."""
        self.probe.close()
        self.writer.transport.abort()

    async def close(self, timeout: float) -> None:
        self.probe.close()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), timeout)
        except (TimeoutError, OSError):
            self.writer.transport.abort()


class StreamTransport:
    """TCP or a unix socket."""

    def __init__(self, address: Address, timeout: float):
        self.address = address
        self.timeout = timeout
        self._connection: _Connection | None = None

    async def open(self) -> None:
        self._connection = await self._connect()

    async def _connect(self) -> _Connection:
        try:
            if self.address.scheme == "unix":
                connecting = asyncio.open_unix_connection(self.address.path)
            else:
                connecting = asyncio.open_connection(self.address.host, self.address.port)
            _, writer = await asyncio.wait_for(connecting, self.timeout)
        except (TimeoutError, OSError) as e:
            raise OutputDown(f"{self.address}: cannot connect: {_reason(e)}") from None
        return _Connection(writer)

    async def send(self, lines: list[bytes]) -> None:
        if self._connection is not None and self._connection.closed_by_peer():
            self._connection.abort()
            self._connection = None
        if self._connection is None:
            self._connection = await self._connect()
        try:
            self._connection.writer.write(b"".join(lines))
            await asyncio.wait_for(self._connection.writer.drain(), self.timeout)
        except (TimeoutError, OSError) as e:
            self._connection.abort()
            self._connection = None
            raise OutputDown(f"{self.address}: cannot write: {_reason(e)}") from None

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close(self.timeout)
            self._connection = None


class DatagramTransport:
    """UDP: fire and forget. A receiver that is down loses what is sent meanwhile."""

    def __init__(self, address: Address, timeout: float, max_datagram: int):
        self.address = address
        self.timeout = timeout
        self.max_datagram = max_datagram
        self._transport: asyncio.DatagramTransport | None = None

    async def open(self) -> None:
        self._transport = await self._open()

    async def _open(self) -> asyncio.DatagramTransport:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await asyncio.wait_for(loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=(self.address.host, self.address.port)),
                self.timeout)
        except (TimeoutError, OSError) as e:
            raise OutputDown(f"{self.address}: cannot open: {_reason(e)}") from None
        return transport

    async def send(self, lines: list[bytes]) -> None:
        if self._transport is None:
            self._transport = await self._open()
        for datagram in datagrams(lines, self.max_datagram):
            self._transport.sendto(datagram)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _reason(error: OSError) -> str:
    if isinstance(error, TimeoutError):       # asyncio.wait_for's, or the kernel's
        return "no answer (timeout)"
    return error.strerror or str(error)


def transport(address: Address, timeout: float, max_datagram: int
              ) -> StreamTransport | DatagramTransport:
    if address.scheme == "udp":
        return DatagramTransport(address, timeout, max_datagram)
    return StreamTransport(address, timeout)

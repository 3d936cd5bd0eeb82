"""A syslog input: messages that a server sends (nginx `access_log syslog:server=…`, a
container runtime) over UDP, TCP or a unix datagram socket, their RFC 3164 or RFC 5424
header stripped, handed on as lines for the input's format.

What a message is: `<PRI>` then either RFC 5424 (`1 TIMESTAMP HOST APP PROCID MSGID SD MSG`)
or RFC 3164 (`Mmm dd hh:mm:ss HOST TAG: MSG`, as nginx writes it); the MSG is the line. A
message with neither header is counted in `malformed` and dropped. On TCP, messages are
framed by octet counting (`LEN SP MSG`, RFC 6587) or end at a newline.

Delivery: UDP datagrams can be lost before plogd sees them (a socket buffer that fills
while plogd is busy or stopped, the network) and nothing tells; TCP and the unix socket do
not lose what the kernel accepted.
A socket has no position to resume from: what plogd received is counted once, but what was
received and not yet in a checkpoint when plogd dies, and what is sent while it is down, is
lost (at most once). Open windows survive a clean stop in the checkpoint as for files.
"""
from __future__ import annotations

import logging
import os
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from .files import FileId
from .messages import LineBatch

_log = logging.getLogger("plogd.read")

MAX_DATAGRAM = 65535
MAX_BATCH = 1 << 20          # bytes of messages per batch
RECEIVE_BUFFER = 8 << 20     # asked for datagram sockets
_RFC5424 = re.compile(rb"<\d{1,3}>[1-9]\d{0,2} (?:\S+ ){5}(?:-|(?:\[(?:[^]\\]|\\.)*\])+)"
                      rb"(?: |$)")
_RFC3164 = re.compile(rb"<\d{1,3}>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (?:\S+ )?"
                      rb"[^\s:\[]+(?:\[\d+\])?: ?")
_OCTET_COUNT = re.compile(rb"(\d{1,8}) ")


def strip_header(message: bytes) -> bytes | None:
    """The MSG of a syslog message (without its trailing newline), or None when it has
    no RFC 5424 or RFC 3164 header."""
    message = message.rstrip(b"\r\n")
    m = _RFC5424.match(message) or _RFC3164.match(message)
    if m is None:
        return None
    msg = message[m.end():]
    return msg[3:] if msg.startswith(b"\xef\xbb\xbf") else msg     # RFC 5424's BOM


class ListenError(ValueError):
    """A `listen:` address that is not udp://, tcp:// or unix://; the message says so."""


def parse_address(text: str) -> tuple[str, Any]:
    """'udp://127.0.0.1:5514' -> ('udp', ('127.0.0.1', 5514)); 'unix:///run/plogd.sock' ->
    ('unix', '/run/plogd.sock'): the address as socket.bind takes it."""
    parts = urlsplit(text)
    if parts.scheme == "unix" and parts.path:
        return "unix", parts.path
    if parts.scheme in ("udp", "tcp"):
        try:
            if parts.hostname and parts.port is not None:
                return parts.scheme, (parts.hostname, parts.port)
        except ValueError:
            pass
    raise ListenError(f"found {text!r}; expected udp://HOST:PORT, tcp://HOST:PORT or "
                      "unix:///PATH (a unix datagram socket)")


class SyslogListener:
    """Receives one input's messages; `poll()` gives what arrived as a LineBatch. Has the
    counters a FileFollower has (rotations, truncations, missing) and `malformed`."""

    rotations = truncations = 0
    pending = False             # nothing waits to be read once poll() returned

    def __init__(self, input_name: str, address: str, max_line: int):
        self.input = input_name
        self.path = address
        self.kind, self.address = parse_address(address)
        self.max_line = max_line
        self.missing = 0         # times the socket could not be opened
        self.malformed = 0
        self.received = 0
        self._seq = 0
        self._problem: str | None = None
        self._socket: socket.socket | None = None
        self._streams: dict[socket.socket, bytearray] = {}     # TCP connections

    def _open(self) -> socket.socket | None:
        """The listening socket, or None (the problem reported once)."""
        try:
            family = socket.AF_UNIX if self.kind == "unix" else \
                socket.getaddrinfo(self.address[0], None)[0][0]
            kind = socket.SOCK_STREAM if self.kind == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(family, kind)
            if self.kind == "unix" and os.path.exists(self.address):
                os.unlink(self.address)          # a socket left by the last run
            if self.kind == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:   # room for bursts between polls (the kernel caps it at net.core.rmem_max)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(self.address)
            if self.kind == "tcp":
                sock.listen(64)
            sock.setblocking(False)
        except OSError as e:
            if e.strerror != self._problem:
                self.missing += 1
                _log.warning("%s: cannot listen on %s (%s); retrying", self.input, self.path,
                             e.strerror)
                self._problem = e.strerror
            return None
        _log.info("%s: listening for syslog messages on %s", self.input, self.path)
        self._socket, self._problem = sock, None
        return sock

    def poll(self) -> list[LineBatch]:
        sock = self._socket or self._open()
        if sock is None:
            return []
        messages = self._accept_streams(sock) if self.kind == "tcp" else self._datagrams(sock)
        lines = []
        for message in messages:
            msg = strip_header(message)
            if msg is None:
                self.malformed += 1
            else:
                lines.append(msg)
        self.received += len(messages)
        if not lines:
            return []
        kept = [line for line in lines if len(line) <= self.max_line]
        data = b"\n".join(kept) + b"\n" if kept else b""
        self._seq += 1
        return [LineBatch(self.input, self._seq, self.path, FileId(0, 0, 0, ""), data,
                          0, 0, 0, len(lines) - len(kept), self.path)]

    def _datagrams(self, sock: socket.socket) -> list[bytes]:
        messages, size = [], 0
        while size < MAX_BATCH:
            try:
                datagram = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            messages.append(datagram)
            size += len(datagram)
        return messages

    def _accept_streams(self, sock: socket.socket) -> list[bytes]:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            conn.setblocking(False)
            self._streams[conn] = bytearray()
        messages = []
        for conn, buffer in list(self._streams.items()):
            closed = False
            while len(buffer) < MAX_BATCH:
                try:
                    data = conn.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    data = b""
                if not data:
                    closed = True
                    break
                buffer += data
            messages += _frames(buffer, closed)
            if closed:
                conn.close()
                del self._streams[conn]
        return messages

    def bytes_behind(self) -> int:
        return 0

    def close(self) -> None:
        for conn in self._streams:
            conn.close()
        self._streams = {}
        if self._socket is not None:
            self._socket.close()
            self._socket = None
            if self.kind == "unix":
                try:
                    os.unlink(self.address)
                except OSError:
                    pass


def _frames(buffer: bytearray, closed: bool) -> list[bytes]:
    """Take the complete messages out of a TCP stream's buffer: octet-counted (`LEN SP
    MSG`) or ending at a newline; at the end of the stream, the rest is one message."""
    messages = []
    while buffer:
        m = _OCTET_COUNT.match(buffer)
        if m is not None:
            end = m.end() + int(m.group(1))
            if end > len(buffer):
                break
            messages.append(bytes(buffer[m.end():end]))
        else:
            end = buffer.find(b"\n") + 1
            if end == 0:
                break
            messages.append(bytes(buffer[:end]))
        del buffer[:end]
    if closed and buffer:
        messages.append(bytes(buffer))
        buffer.clear()
    return messages

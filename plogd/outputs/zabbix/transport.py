"""The Zabbix trapper protocol as plogd speaks it: TLS (certificates, PSK), the
bounded exchange around zabbix-utils' Sender, and how many values a server refused."""
from __future__ import annotations

import json
import logging
import re
import ssl
import struct
import sys
import time
import zlib
from dataclasses import dataclass, fields


class SendError(Exception):
    """The value could not be delivered: connection refused/reset, timeout, TLS failure,
    or a server answer that is not a "processed/failed" one."""


class TLSConfigError(Exception):
    """A TLS setting that cannot work; raised at start-up, not at the first send."""


# -- TLS -------------------------------------------------------------------------------------

@dataclass
class TLSConfig:
    """`connect`: "cert" or "psk" (as the agent's TLSConnect)."""
    connect: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None      # check the server certificate's name (SAN/CN)
    psk_identity: str | None = None
    psk_file: str | None = None


# its settings but `connect`, as the `zabbix:` section names them with "tls_" before
TLS_FIELDS = tuple(f.name for f in fields(TLSConfig) if f.name != "connect")


def tls_context(tls: TLSConfig) -> ssl.SSLContext:
    """The client context for `tls`; raises TLSConfigError with a clear reason."""
    if tls.connect == "cert":
        missing = [n for n in ("ca_file", "cert_file", "key_file") if not getattr(tls, n)]
        if missing:
            needs = ", ".join("tls_" + m for m in missing)
            raise TLSConfigError(f"TLS with certificates needs {needs}")
        assert tls.cert_file is not None        # missing: none of the three is empty
        try:
            ctx = ssl.create_default_context(cafile=tls.ca_file)
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as e:
            raise TLSConfigError(f"cannot load the TLS certificates ({tls.ca_file}, "
                                 f"{tls.cert_file}, {tls.key_file}): {e}") from None
        ctx.check_hostname = bool(tls.server_name)
        return ctx
    if tls.connect == "psk":
        if not tls.psk_identity or not tls.psk_file:
            raise TLSConfigError("TLS with a pre-shared key needs tls_psk_identity and "
                                 "tls_psk_file")
        if not (getattr(ssl, "HAS_PSK", False)
                and hasattr(ssl.SSLContext, "set_psk_client_callback")):
            raise TLSConfigError(
                f"TLS with a pre-shared key (PSK) needs Python >= 3.13 built with OpenSSL PSK "
                f"support (ssl.SSLContext.set_psk_client_callback); this is Python "
                f"{sys.version.split()[0]}. Use certificates, or run plogd with Python 3.13+")
        try:
            with open(tls.psk_file, encoding="ascii") as f:
                key = bytes.fromhex(f.read().strip())
        except (OSError, ValueError) as e:
            raise TLSConfigError(f"cannot read the PSK file {tls.psk_file} (hexadecimal "
                                 f"key, as zabbix_agentd's TLSPSKFile): {e}") from None
        if len(key) < 16:
            raise TLSConfigError(f"the PSK in {tls.psk_file} is {len(key)} bytes; Zabbix needs "
                                 "at least 16 (32 hex digits)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2     # Python's PSK callback is TLS <= 1.2
        ctx.set_ciphers("PSK")
        identity = tls.psk_identity
        # Python 3.13+ only (checked above); mypy checks for 3.11, whose ssl lacks it
        ctx.set_psk_client_callback(lambda hint: (identity, key))  # type: ignore[attr-defined]
        return ctx
    raise TLSConfigError(f"tls_connect: found {tls.connect!r}; allowed: unencrypted, cert, psk")


# -- the transport (zabbix-utils) ------------------------------------------------------------

MAX_REPLY = 1 << 20      # bytes of a trapper reply, inflated or not (a real one is ~100 bytes)
_INFO = re.compile(r"[Pp]rocessed:\s*\d+;\s*[Ff]ailed:\s*\d+;\s*[Tt]otal:\s*\d+;"
                   r"\s*[Ss]econds spent:\s*\d+\.\d+")


class BoundedExchange:
    """The connection zabbix-utils' Sender talks through (its `socket_wrapper` hook).

    Why not Sender alone: its socket timeout bounds each recv, not the exchange (a reply
    header claiming 4 GB then 1 byte/s holds it forever), it asks recv for the size the header
    claims and inflates a compressed reply whole (a 306 KB zlib bomb took 656 MB), and an
    unexpected reply (JSON null, an `info` it cannot parse) ends in an AttributeError. Here
    the request and the whole reply share one deadline, the reply is read and inflated to at
    most MAX_REPLY bytes and its shape is checked; what goes wrong is a SendError. Sender gets
    the checked reply back as a plain packet and does the rest as usual."""

    def __init__(self, conn, timeout: float, address: str):
        self._conn = conn
        self._deadline = time.monotonic() + timeout
        self._address = address
        self._reply: bytes | None = None

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise SendError(f"Zabbix {self._address}: no complete reply within the deadline")
        self._conn.settimeout(left)
        return left

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self._remaining()
            view = view[self._conn.send(view[:1 << 16]):]

    def _read(self, size: int) -> bytes:
        parts, got = [], 0
        while got < size:
            self._remaining()
            chunk = self._conn.recv(min(size - got, 1 << 16))
            if not chunk:
                raise SendError(f"Zabbix {self._address} closed the connection before the "
                                "end of its reply")
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def _unexpected(self, what: str) -> SendError:
        return SendError(f"unexpected reply from Zabbix {self._address}: {what}")

    def _read_reply(self) -> bytes:
        header = self._read(13)
        magic, flags, size, _ = struct.unpack("<4sBII", header)
        if magic != b"ZBXD" or not flags & 0x01 or flags & 0x04:
            raise self._unexpected(f"header {header!r}")
        if size > MAX_REPLY:
            raise self._unexpected(f"its header announces {size} bytes (at most {MAX_REPLY})")
        body = self._read(size)
        if flags & 0x02:
            inflate = zlib.decompressobj()
            try:
                body = inflate.decompress(body, MAX_REPLY)
            except zlib.error as e:
                raise self._unexpected(f"cannot inflate it: {e}") from None
            if inflate.unconsumed_tail:
                raise self._unexpected(f"it inflates to more than {MAX_REPLY} bytes")
        try:
            reply = json.loads(body)
        except ValueError:
            raise self._unexpected(repr(body[:200])) from None
        if not (isinstance(reply, dict) and isinstance(reply.get("info"), str)
                and (reply.get("response") != "success" or _INFO.search(reply["info"]))):
            raise self._unexpected(repr(body[:200]))
        if "redirect" in reply:       # proxy groups (7.0): not followed, and not trusted
            raise self._unexpected("a redirection to another proxy")
        return struct.pack("<4sBII", b"ZBXD", 0x01, len(body), 0) + body

    def recv(self, size: int) -> bytes:
        if self._reply is None:
            try:
                self._reply = self._read_reply()
            finally:
                self._conn.close()
        chunk, self._reply = self._reply[:size], self._reply[size:]
        return chunk

    def settimeout(self, _timeout) -> None:
        pass                     # the deadline rules

    def close(self) -> None:
        self._conn.close()


def clusters_text(clusters: list[list[tuple[str, int]]]) -> str:
    """`a:1;b:1,c:1`: as in the agent's ServerActive (`;` HA nodes, `,` servers)."""
    return ",".join(";".join(f"{h}:{p}" for h, p in nodes) for nodes in clusters)


class ZabbixTransport:
    """`transport(records) -> failed count` over zabbix-utils' Sender; raises SendError.

    `clusters`: the servers to send every value to, each a list of HA cluster nodes
    (host, port) of which the first that accepts the connection is used."""

    def __init__(self, clusters: list[list[tuple[str, int]]], tls: TLSConfig | None = None,
                 timeout: float = 10, chunk_size: int = 250):
        from zabbix_utils import Sender   # only where it is used
        from zabbix_utils.types import Cluster, Node
        # zabbix-utils logs an ERROR at every failed attempt; this stage reports outages
        # itself, once per change of state
        logging.getLogger("zabbix_utils").setLevel(logging.CRITICAL)
        self.address = clusters_text(clusters)
        ctx = tls_context(tls) if tls is not None and tls.connect != "unencrypted" else None

        def wrap(conn, _tls_settings):
            host, port = conn.getpeername()[:2]
            address = f"{host}:{port}"
            if ctx is not None:
                try:
                    conn = ctx.wrap_socket(conn, server_hostname=tls.server_name)
                except (ssl.SSLError, OSError) as e:
                    conn.close()
                    raise SendError(f"TLS handshake with {address} failed: {e}") from None
            return BoundedExchange(conn, timeout, address)

        self._sender = Sender(timeout=timeout, chunk_size=chunk_size, socket_wrapper=wrap)
        self._sender.clusters = []
        for nodes in clusters:        # Node objects: Cluster() would split "[::1]:1" at ':'
            cluster = Cluster([])
            cluster.nodes = [Node(h, p) for h, p in nodes]
            self._sender.clusters.append(cluster)

    def __call__(self, records: list[dict]) -> int:
        from zabbix_utils import ItemValue
        from zabbix_utils.exceptions import ProcessingError
        items = [ItemValue(r["host"], r["key"], value_text(r["value"]), r.get("clock"), r.get("ns"))
                 for r in records]
        try:
            return refused_count(self._sender.send(items))
        except SendError:
            raise
        except (ProcessingError, OSError, ValueError, ssl.SSLError) as e:
            raise SendError(describe(e)) from None


def refused_count(response) -> int:
    """The values refused, from zabbix-utils' TrapperResponse. With several servers (`a,b`)
    its `failed` adds theirs up; a value refused by each is one refused value, hence the
    most any server refused of each chunk."""
    worst: dict[int, int] = {}
    for chunks in (response.details or {}).values():
        for chunk in chunks:
            worst[chunk.chunk] = max(worst.get(chunk.chunk, 0), int(chunk.failed))
    return sum(worst.values()) if worst else int(response.failed)


def value_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def describe(error: Exception) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, ConnectionResetError) or "reset by peer" in text:
        text += (" (the server closed the connection: a host that accepts only TLS, or a "
                 "TLS setting the server does not accept?)")
    return text

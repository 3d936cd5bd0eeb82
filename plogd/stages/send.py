"""send: the zabbix-sender stage. The result file is the spool.

`SendStage` follows the result file (STATE_DIR/results.jsonl, written and fsynced by the
writer) like a tailer, from its own offset kept in a state file (JSON, replaced atomically).
Every `poll()` it reads new complete lines, sends them in batches in clock order, each value
with the fixed clock and ns of its window, and advances and saves the offset only once the
server accepted (or definitively refused) them. A crash between a send and the save of the
offset re-sends that batch at the next start: harmless, because Zabbix stores a value whose
(item, clock, ns) it already has only once.

Connection errors (server stopped, TLS refused, timeouts): the batch stays pending and is
retried with a capped exponential backoff (1 s, 2 s ... 60 s); one log line when Zabbix
becomes unreachable, one when it is back, never one per attempt. The values wait in the
result file meanwhile, so an outage costs disk, not data.

Failed values: the server answers only "processed: N; failed: M". When M > 0 the batch is
split in halves and each half re-sent until the failing values are found (re-sending stored
values is harmless). Their keys are logged by name (rate-limited), and the values are kept
in a retry list (persisted) and re-sent with backoff for `failed_retry_seconds` — the item
may yet be created by low-level discovery — then given up with a log line and a counter.

Low-level discovery: a record of a `by:` metric may carry
    "by": "status", "member": "200", "template": "nginx.status[{status}]"
The stage then knows the metric's discovery key (`nginx.status.discovery`, see
`discovery_key`; or the record's "discovery", as for plogd's own per-input values) and its
macro (`{#STATUS}`). Before the first value of a member it has not announced yet it sends, in
a separate request, the full set of members seen as LLD JSON (`[{"{#STATUS}": "200"}, ...]`);
the values follow (until the server's configuration cache knows the new items they fail and
wait in the retry list, logged once per key as "waiting for discovery", counted as `waited`).
A set the server refuses (no discovery rule yet) is sent again with backoff (5 s doubling to
10 min). The set is persisted; members not seen for `lld_member_ttl` seconds are dropped from
it, at most `lld_max_members` are kept (the least recently seen make room: a `by:` over
client-chosen values stays bounded across windows), and the whole set is re-sent every
`lld_resend_seconds` so the server keeps the discovered items.

plogd.* values (self-monitoring) are sent once per key and clock: a set made again for an
interval after a restart, with other values, is skipped (`own_clocks` in the state).

The protocol itself is zabbix-utils' `Sender` (`ZabbixTransport`); the logic here takes any
`transport(records) -> number failed` and is tested without sockets (tests/test_send.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import ssl
import struct
import sys
import time
import zlib
from dataclasses import dataclass
from typing import Callable

from .. import checkpoint, monitoring
from ..heartbeat import beat
from ..metrics import discovery_key

_log = logging.getLogger("plogd.send")

BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
LOG_EVERY = 60.0         # seconds between two log lines about refused keys
LLD_RETRY_MAX = 600.0    # longest wait before a refused discovery set is sent again


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


def tls_context(tls: TLSConfig) -> ssl.SSLContext:
    """The client context for `tls`; raises TLSConfigError with a clear reason."""
    if tls.connect == "cert":
        missing = [n for n in ("ca_file", "cert_file", "key_file") if not getattr(tls, n)]
        if missing:
            raise TLSConfigError(f"TLS with certificates needs {', '.join('tls_' + m for m in missing)}")
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
            raise TLSConfigError("TLS with a pre-shared key needs tls_psk_identity and tls_psk_file")
        if not getattr(ssl, "HAS_PSK", False) or not hasattr(ssl.SSLContext, "set_psk_client_callback"):
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
        ctx.set_psk_client_callback(lambda hint: (identity, key))
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


# -- discovery -------------------------------------------------------------------------------

def discovery_macro(by: str) -> str:
    return "{#" + re.sub(r"[^A-Z0-9_.]", "_", by.upper()) + "}"


def _unquote_param(param: str) -> str:
    if len(param) >= 2 and param[0] == param[-1] == '"':
        return param[1:-1].replace('\\"', '"')
    return param


_OWN_PER_INPUT = re.compile(re.escape(monitoring.PREFIX) + r"\.(\w+)\[(.+)\]\Z")


def _lld_ident(record: dict) -> str | None:
    """`host \x00 discovery key` of a record of a discovered item; None for others."""
    by, template = record.get("by"), record.get("template")
    if by is None or template is None or record.get("member") is None:
        return None
    return f"{record['host']}\x00{record.get('discovery') or discovery_key(template, by)}"


class LLDTagger:
    """For the writer: adds "by", "member" and "template" to the records of `by:` metrics,
    so that the sender can announce their members by discovery; plogd's own per-input values
    (`plogd.lines[INPUT]` ...) also get "discovery": `plogd.inputs.discovery`, their one set.

        tagger = LLDTagger(config.inputs)      # inputs with .name and .metrics (.key, .by)
        record = tagger.tag(window.input, record)
    """

    def __init__(self, inputs):
        self._patterns: dict[str, list] = {}
        for spec in inputs:
            for m in spec.metrics:
                if getattr(m, "by", None):
                    placeholder = "{" + m.by + "}"
                    head, _, tail = m.key.partition(placeholder)
                    pattern = re.compile(re.escape(head) + r"(.+)" + re.escape(tail) + r"\Z")
                    self._patterns.setdefault(spec.name, []).append((pattern, m.key, m.by))

    def tag(self, input_name: str, record: dict) -> dict:
        if input_name == monitoring.PREFIX:
            # plogd's per-input values, plogd.lines[INPUT] ...: one discovery set over the
            # inputs, so that one template fits every host whatever its inputs are called
            match = _OWN_PER_INPUT.match(record["key"])
            if match:
                record.update(by="input", member=_unquote_param(match.group(2)),
                              template=f"{monitoring.PREFIX}.{match.group(1)}[{{input}}]",
                              discovery=monitoring.INPUTS_DISCOVERY)
                return record
        for pattern, template, by in self._patterns.get(input_name, ()):
            match = pattern.match(record["key"])
            if match:
                record.update(by=by, member=_unquote_param(match.group(1)), template=template)
                break
        return record


# -- the stage -------------------------------------------------------------------------------

def result_files(result_path: str) -> list[tuple[str, os.stat_result]]:
    """The rotated result files `results.jsonl.N` (N a number; lowest first) then
    `results.jsonl` itself, with their stat, those that exist."""
    directory, base = os.path.split(os.path.abspath(result_path))
    rotated = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        suffix = name[len(base) + 1:]
        if name.startswith(base + ".") and suffix.isdigit():
            rotated.append((int(suffix), os.path.join(directory, name)))
    out = []
    for _, path in sorted(rotated) + [(None, result_path)]:
        try:
            out.append((path, os.stat(path)))
        except FileNotFoundError:
            pass
    return out


def spool_backlog(result_path: str, offset: int | None = None, inode: int | None = None,
                  state_path: str | None = None) -> int:
    """Bytes written but not yet accepted by Zabbix. From another process (the reader, to
    pause when the spool is full), pass `state_path` (the sender's state file)."""
    if state_path is not None:
        state = checkpoint.peek(state_path)
        offset, inode = state.get("offset", 0), state.get("inode")
        if not isinstance(offset, int) or not isinstance(inode, (int, type(None))):
            offset, inode = 0, None         # damaged: as if nothing were sent yet
    files = result_files(result_path)
    for i, (_, st) in enumerate(files):
        if st.st_ino == inode:
            return max(0, st.st_size - (offset or 0)) + sum(s.st_size for _, s in files[i + 1:])
    return sum(st.st_size for _, st in files) - (offset or 0 if inode is None else 0)


def _check_send_state(state: dict) -> None:
    """ValueError when send.json is not in the shape SendStage saves."""
    shape = {"offset": int, "inode": (int, type(None)), "retry": list, "lld": dict,
             "totals": dict, "own_clocks": dict}
    for key, kind in shape.items():
        if key in state and not isinstance(state[key], kind):
            raise checkpoint.Damaged(f"{key!r} holds {type(state[key]).__name__}")
    if not all(isinstance(e, dict) and {"r", "since", "next", "n"} <= e.keys()
               for e in state.get("retry", [])):
        raise checkpoint.Damaged("'retry' holds something else than retried records")
    if not all(isinstance(e, dict) and "macro" in e and isinstance(e.get("members"), dict)
               for e in state.get("lld", {}).values()):
        raise checkpoint.Damaged("'lld' holds something else than discovery entries")


class SendStage:
    def __init__(self, result_path: str, state_path: str, server: str = "127.0.0.1",
                 port: int = 10051, tls: TLSConfig | None = None, *,
                 clusters: list[list[tuple[str, int]]] | None = None,
                 transport: Callable[[list[dict]], int] | None = None,
                 batch_size: int = 1000, max_batches_per_poll: int = 10,
                 failed_retry_seconds: float = 600, lld_member_ttl: float = 7 * 86400,
                 lld_resend_seconds: float = 3600, lld_max_members: int = 1000,
                 timeout: float = 10,
                 max_retry: int = 100_000,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.result_path = result_path
        self.state_path = state_path
        clusters = clusters or [[(server, port)]]     # HA nodes of each server (ServerActive)
        self.address = clusters_text(clusters)
        self.transport = transport or ZabbixTransport(clusters, tls, timeout=timeout)
        self.batch_size = batch_size
        self.max_batches_per_poll = max_batches_per_poll
        self.failed_retry_seconds = failed_retry_seconds
        self.lld_member_ttl = lld_member_ttl
        self.lld_resend_seconds = lld_resend_seconds
        self.lld_max_members = lld_max_members
        self.max_retry = max_retry
        self._clock = clock
        self._wall = wall
        # counters (self-monitoring; sent, refused and given_up come from the state below)
        self.malformed = 0       # lines of the result file that are not a record
        self.lld_sent = 0
        # connection state
        self.up = True
        self._backoff = 0.0
        self._retry_at = 0.0
        self._down_since = 0.0
        self._logged_keys: dict[str, float] = {}   # refused key -> when last logged
        self._pending: list[dict] = []   # read, not yet acknowledged
        self._pending_end = 0            # offset after the pending records
        self._waiting_logged: set[str] = set()     # keys logged once as waiting for discovery
        # The state is three files, each written when it changes: send.json (offset, totals;
        # after every batch, small), its .retry and .lld siblings (the refused values, the
        # discovery sets: only when they change; the members' last-seen times are saved
        # with the sets, at the latest at the hourly re-send).
        base = state_path[:-5] if state_path.endswith(".json") else state_path
        self.retry_path, self.lld_path = f"{base}.retry.json", f"{base}.lld.json"
        state = self._load(self.state_path)
        totals = state.get("totals", {})      # kept across restarts
        self.sent = totals.get("sent", 0)          # values the server accepted
        self.refused = totals.get("refused", 0)    # values refused at least once (once each)
        self.waited = totals.get("waited", 0)      # refused until their discovered item existed
        self.given_up = totals.get("given_up", 0)  # refused values dropped after the retries
        self.offset: int = state.get("offset", 0)
        self._inode = state.get("inode")
        # plogd.* values: the clock last sent per host\x00key, so that a set made again for
        # the same interval after a restart (other values, same clock) is not sent again
        self.own_clocks: dict[str, int] = state.get("own_clocks", {})
        # {"r": record, "since": wall, "next": wall, "n": tries}; "retry"/"lld" in send.json:
        # the state of an older plogd
        self.retry: list[dict] = self._load(self.retry_path).get("retry", state.get("retry", []))
        # {host \x00 dkey: {"macro": ..., "members": {member: last_seen_wall}, "sent": wall,
        #  "announced": bool, "n": refusals in a row, "next": wall of the next try}}
        self.lld: dict[str, dict] = self._load(self.lld_path).get("lld", state.get("lld", {}))
        self._fresh: dict[tuple, float] = {}   # (set, member) -> when it joined the set

    # -- state ---------------------------------------------------------------------------
    def _load(self, path: str) -> dict:
        try:
            state = checkpoint.load(path)
            if state is not None:
                _check_send_state(state)
            return state or {}
        except OSError as e:
            problem, aside = e.strerror, None
        except ValueError as e:        # damaged: kept aside for a post-mortem
            problem, aside = e, checkpoint.move_aside(path)
        if path == self.state_path:
            cost = (f"sending the result files again from their start, "
                    f"{spool_backlog(self.result_path, 0)} bytes (Zabbix does not store a "
                    "value twice: same clock and ns)")
        elif path == self.retry_path:
            cost = "the values waiting for a retry are not retried"
        else:
            cost = "the discovery sets start empty and are sent again as members come"
        _log.error("cannot use the sender state %s (%s)%s; %s", path, problem,
                   f", kept as {aside}" if aside else "", cost)
        return {}

    def _save(self, retry: bool = False, lld: bool = False) -> None:
        """Save the offset and totals, and the retry list and discovery sets if they changed
        (first: a crash before the offset is saved re-sends, harmlessly)."""
        if retry:
            checkpoint.save(self.retry_path, {"retry": self.retry})
        if lld:
            checkpoint.save(self.lld_path, {"lld": self.lld})
        checkpoint.save(self.state_path, {
            "offset": self.offset, "inode": self._inode, "own_clocks": self.own_clocks,
            "totals": {"sent": self.sent, "refused": self.refused, "waited": self.waited,
                       "given_up": self.given_up},
            "up": self.up})

    def backlog_bytes(self) -> int:
        """Bytes of the result files not yet accepted (the spool's fill): the rest of the
        file being sent plus every file after it."""
        return spool_backlog(self.result_path, self.offset, self._inode)

    def stats(self) -> dict:
        """Self-monitoring values (e.g. for plogd.send.* items)."""
        return {"sent": self.sent, "refused": self.refused, "waited": self.waited,
                "given_up": self.given_up,
                "malformed": self.malformed, "lld_sent": self.lld_sent,
                "retry_waiting": len(self.retry), "backlog_bytes": self.backlog_bytes(),
                "up": int(self.up)}

    # -- reading -------------------------------------------------------------------------
    def _current(self) -> tuple[str, os.stat_result] | None:
        """The file being sent: the one with the saved inode among the rotated result files
        (oldest first) and the result file; or the first of them when it is gone."""
        files = result_files(self.result_path)
        if not files:
            return None
        for path, st in files:
            if st.st_ino == self._inode:
                return path, st
        if self._inode is not None:
            _log.warning("the result file %s being sent is gone; going on with %s from its "
                         "start", self.result_path, files[0][0])
        elif self.offset:       # a state without an inode: the offset is the result file's
            return files[-1]
        self.offset = 0
        return files[0]

    def _read(self) -> None:
        """Fill self._pending with up to batch_size records from self.offset."""
        current = self._current()
        if current is None:
            return
        path, st = current
        if st.st_size < self.offset:
            _log.warning("the result file %s was truncated; sending it from its start", path)
            self.offset = 0
        self._inode = st.st_ino
        if st.st_size <= self.offset:
            if path != self.result_path:
                # a rotated file, fully accepted: remove it and go on with the next one
                files = [p for p, _ in result_files(self.result_path)]
                nxt = files[files.index(path) + 1] if files.index(path) + 1 < len(files) else None
                if nxt is not None:
                    os.unlink(path)
                    _log.info("removed %s: every value in it was accepted", path)
                    self._inode, self.offset = os.stat(nxt).st_ino, 0
                    self._save()
                    self._read()
            return
        records, end = [], self.offset
        with open(path, "rb") as f:
            f.seek(self.offset)
            while len(records) < self.batch_size:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break              # incomplete: the writer is still appending it
                end += len(line)
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict) or "key" not in record or "host" not in record:
                        raise ValueError("not a value record")
                except ValueError:
                    self.malformed += 1
                    _log.error("%s: skipping a line that is not a value record at offset %d: %r",
                               path, end - len(line), line[:200])
                    continue
                records.append(record)
        records.sort(key=lambda r: (r.get("clock", 0), r.get("ns", 0)))   # oldest first
        self._pending, self._pending_end = records, end

    # -- the loop step -------------------------------------------------------------------
    def poll(self) -> None:
        """Send what is new (a bounded number of batches), retry what is due. Never raises
        for a delivery problem; returns quickly while backing off."""
        now = self._clock()
        if now < self._retry_at:
            return
        try:
            for _ in range(self.max_batches_per_poll):
                beat()            # each batch is a step: --multi's supervisor sees it move
                if not self._pending:
                    self._read()
                if not self._pending:
                    break
                self._deliver(self._pending, self._pending_end)
            self._retry_due()
            self._lld_maintenance()
        except SendError as e:
            self._went_down(e)
            return
        self._went_up()

    def _deliver(self, records: list[dict], end: int) -> None:
        records, own_clocks = self._once_per_clock(records)
        lld_changed = self._announce(records)
        failed = self._send_finding_failed(records)
        self.own_clocks.update(own_clocks)
        self.sent += len(records) - len(failed)
        if failed:
            wall = self._wall()
            for r in failed:
                self.retry.append({"r": r, "since": wall, "next": wall + 5, "n": 1})
            if len(self.retry) > self.max_retry:
                dropped = self.retry[:len(self.retry) - self.max_retry]
                del self.retry[:len(dropped)]
                self.given_up += len(dropped)
                _log.error("Zabbix %s: more than %d refused values wait for a retry; giving up "
                           "the %d oldest", self.address, self.max_retry, len(dropped))
            fresh, others = [], []
            for r in failed:
                (fresh if self._is_fresh(r, wall) else others).append(r)
            self.waited += len(fresh)
            self.refused += len(others)
            self._log_waiting(fresh)
            if others:
                self._log_refused(others, "will retry for %d s (the item may yet be discovered)"
                                  % self.failed_retry_seconds)
        self._pending, self.offset = [], end
        self._save(retry=bool(failed), lld=lld_changed)

    def _once_per_clock(self, records: list[dict]) -> tuple[list[dict], dict]:
        """Drop plogd.* values of a clock already sent: one clock, one value, however often
        a restart makes the set of an interval again (records are in clock order). Returns
        the records to send and the clocks to remember once they are sent."""
        kept, clocks = [], {}
        for r in records:
            if r["key"].startswith("plogd."):
                ident = f"{r['host']}\x00{r['key']}"
                clock = r.get("clock", 0)
                if clock <= clocks.get(ident, self.own_clocks.get(ident, -1)):
                    continue
                clocks[ident] = clock
            kept.append(r)
        return kept, clocks

    def _is_fresh(self, record: dict, wall: float) -> bool:
        """Whether the record's member joined its set lately (its item may not exist yet)."""
        ident = _lld_ident(record)
        joined = self._fresh.get((ident, str(record["member"])), -1e18) if ident else -1e18
        return joined > wall - self.failed_retry_seconds

    def _log_waiting(self, fresh: list[dict]) -> None:
        """Once per key: values of newly discovered items are normal, not errors."""
        keys = sorted({f"{r['host']}:{r['key']}" for r in fresh} - self._waiting_logged)
        if not keys:
            return
        self._waiting_logged.update(keys)
        if len(self._waiting_logged) > 10_000:
            self._waiting_logged = set(keys)
        _log.info("waiting for discovery: %d new item(s) not yet known to the server, their "
                  "values are retried for up to %d s: %s", len(keys), self.failed_retry_seconds,
                  ", ".join(keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else ""))

    def _send_finding_failed(self, records: list[dict]) -> list[dict]:
        """Send; return the records the server refused, found by splitting the batch."""
        if not records:
            return []
        failed = self.transport(records)
        beat()                    # a bisection is many exchanges: each one is a step
        if failed == 0:
            return []
        if len(records) == 1:
            return records
        if failed >= len(records):
            return records        # all refused (e.g. a host that accepts only TLS): no split
        middle = len(records) // 2
        return self._send_finding_failed(records[:middle]) + self._send_finding_failed(records[middle:])

    def _retry_due(self) -> None:
        if not self.retry:
            return
        wall = self._wall()
        due = [e for e in self.retry if e["next"] <= wall]
        if not due:
            return
        keep = [e for e in self.retry if e["next"] > wall]
        expired = [e for e in due if wall - e["since"] >= self.failed_retry_seconds]
        due = [e for e in due if wall - e["since"] < self.failed_retry_seconds]
        if expired:
            self.given_up += len(expired)
            keys = sorted({f"{e['r']['host']}:{e['r']['key']}" for e in expired})
            _log.error("Zabbix %s: giving up %d value(s) refused for %d s, keys: %s",
                       self.address, len(expired), self.failed_retry_seconds, ", ".join(keys))
        if due:
            failed = self._send_finding_failed([e["r"] for e in due])
            failed_ids = {id(r) for r in failed}
            for e in due:
                if id(e["r"]) in failed_ids:
                    e["n"] += 1
                    e["next"] = wall + min(5 * 2 ** (e["n"] - 1), BACKOFF_MAX)
                    keep.append(e)
                else:
                    self.sent += 1
            failed = [r for r in failed if not self._is_fresh(r, wall)]
            if failed:
                self._log_refused(failed, "still retrying")
        self.retry = keep
        self._save(retry=True)

    def _log_refused(self, failed: list[dict], what: str) -> None:
        """Name the refused keys: each key at once the first time, then at most once per
        LOG_EVERY seconds (a key refused every window does not flood the log). A warning:
        nothing is lost while a value is retried (right after provisioning, the server
        refuses new items until its configuration cache syncs); giving up is the error."""
        now = self._clock()
        keys = sorted({f"{r['host']}:{r['key']}" for r in failed})
        due = [k for k in keys if now - self._logged_keys.get(k, -1e18) >= LOG_EVERY]
        if not due:
            return
        for k in due:
            self._logged_keys[k] = now
        if len(self._logged_keys) > 10_000:
            self._logged_keys = {k: t for k, t in self._logged_keys.items() if now - t < LOG_EVERY}
        shown = ", ".join(due[:20]) + (f" and {len(due) - 20} more" if len(due) > 20 else "")
        _log.warning("Zabbix %s refused %d value(s), keys: %s (does the item exist, with a "
                   "matching type, on that host? does the host accept this connection's "
                   "encryption?); %s", self.address, len(failed), shown, what)

    # -- discovery -----------------------------------------------------------------------
    def _announce(self, records: list[dict]) -> bool:
        """Send the discovery sets that gain a member in `records` (before the values);
        returns whether a set's members changed."""
        wall = self._wall()
        changed = False
        for r in records:
            ident = _lld_ident(r)
            if ident is None:
                continue
            entry = self.lld.setdefault(ident, {"macro": discovery_macro(r["by"]), "members": {},
                                                "sent": 0, "announced": True})
            members, member = entry["members"], str(r["member"])
            if member not in members:
                entry["announced"], entry["n"], entry["next"] = False, 0, 0
                self._fresh[ident, member] = wall
                if len(self._fresh) > 10 * self.lld_max_members:
                    self._fresh = {k: t for k, t in self._fresh.items()
                                   if t > wall - self.failed_retry_seconds}
                changed = True
                if len(members) >= self.lld_max_members:
                    self._evict(ident, members)
            members[member] = wall
        for ident, entry in list(self.lld.items()):
            if not entry.get("announced", True) and entry.get("next", 0) <= wall:
                self._send_lld(ident, entry)
        return changed

    def _evict(self, ident: str, members: dict) -> None:
        """A set is capped across windows (a `by:` over client-chosen values, e.g. paths,
        would otherwise grow without end): the least recently seen member makes room."""
        oldest = min(members, key=members.get)
        del members[oldest]
        now = self._clock()
        if now - self._logged_keys.get(ident, -1e18) >= LOG_EVERY:
            self._logged_keys[ident] = now
            _log.warning("discovery %s: more than %d members (zabbix.lld_max_members); the "
                         "least recently seen make room, e.g. %r", ident.replace("\x00", ":"),
                         self.lld_max_members, oldest)

    def _send_lld(self, ident: str, entry: dict) -> None:
        """Send a discovery set; one the server refuses (no discovery rule yet) is tried
        again with backoff, 5 s doubling up to LLD_RETRY_MAX, while the values go anyway."""
        host, dkey = ident.split("\x00", 1)
        value = json.dumps([{entry["macro"]: m} for m in sorted(entry["members"])])
        record = {"host": host, "key": dkey, "clock": int(self._wall()), "ns": 0, "value": value}
        failed = self.transport([record])      # SendError: retried with the batch
        wall = self._wall()
        if failed:
            entry["n"] = entry.get("n", 0) + 1
            entry["next"] = wall + min(5 * 2 ** (entry["n"] - 1), LLD_RETRY_MAX)
            entry["announced"] = False
            self._log_refused([record], f"retrying in {entry['next'] - wall:.0f} s and sending "
                              f"the values anyway (is there a trapper discovery rule with key "
                              f"{dkey} on host {host}?)")
        else:
            self.lld_sent += 1
            _log.info("discovery %s:%s: %d member(s) announced", host, dkey, len(entry["members"]))
            entry["sent"], entry["announced"], entry["n"] = wall, True, 0

    def _lld_maintenance(self) -> None:
        wall = self._wall()
        changed = False
        for ident, entry in list(self.lld.items()):
            stale = [m for m, seen in entry["members"].items() if wall - seen > self.lld_member_ttl]
            for m in stale:
                del entry["members"][m]
            if stale:
                _log.info("discovery %s: dropping %d member(s) not seen for %d s: %s",
                          ident.replace("\x00", ":"), len(stale), self.lld_member_ttl,
                          ", ".join(stale[:20]))
                entry["announced"] = False
            if entry.get("announced", True):
                due = wall - entry["sent"] >= self.lld_resend_seconds
            else:
                due = entry.get("next", 0) <= wall
            if due:
                self._send_lld(ident, entry)
                changed = True
        if changed:
            self._save(lld=True)

    # -- connection state ----------------------------------------------------------------
    def _went_down(self, error: SendError) -> None:
        now = self._clock()
        self._backoff = min(max(self._backoff * 2, BACKOFF_MIN), BACKOFF_MAX)
        self._retry_at = now + self._backoff
        if self.up:
            self.up = False
            self._down_since = now
            _log.warning("cannot send to Zabbix %s: %s; values wait in %s (%d bytes behind), "
                         "retrying with backoff up to %d s", self.address, error,
                         self.result_path, self.backlog_bytes(), BACKOFF_MAX)

    def _went_up(self) -> None:
        if not self.up:
            _log.warning("Zabbix %s reachable again after %.0f s", self.address,
                         self._clock() - self._down_since)
        self.up = True
        self._backoff = 0.0
        self._retry_at = 0.0

    def close(self) -> None:
        """Nothing is lost by closing: what is not accepted stays in the result file."""
        self._pending = []


# -- wiring ----------------------------------------------------------------------------------

def tls_of(zabbix) -> TLSConfig | None:
    """TLS settings of a config's `zabbix:` section (zabbix.tls_* keys), if any."""
    connect = getattr(zabbix, "tls_connect", None) or "unencrypted"
    if connect == "unencrypted":
        return None
    return TLSConfig(connect, getattr(zabbix, "tls_ca_file", None),
                     getattr(zabbix, "tls_cert_file", None), getattr(zabbix, "tls_key_file", None),
                     getattr(zabbix, "tls_server_name", None),
                     getattr(zabbix, "tls_psk_identity", None), getattr(zabbix, "tls_psk_file", None))


def send_state_path(config) -> str:
    """The sender's state file (offset, retry list, discovery sets) in STATE_DIR."""
    return os.path.join(config.state_dir, "send.json")


def make_send_stage(config) -> SendStage | None:
    """The SendStage of a plogd Config (None without `zabbix:`). Raises TLSConfigError at
    start-up for TLS settings that cannot work (e.g. PSK on Python < 3.13). Optional
    ZabbixConfig fields, read with getattr so they can be added one by one: tls_* (see
    TLSConfig), failed_retry_seconds, lld_member_ttl, lld_resend_seconds, batch_size,
    max_batches_per_poll, timeout."""
    z = config.zabbix
    if z is None:
        return None
    options = {name: getattr(z, name) for name in
               ("failed_retry_seconds", "lld_member_ttl", "lld_resend_seconds", "batch_size",
                "lld_max_members", "max_batches_per_poll", "timeout")
               if getattr(z, name, None) is not None}
    return SendStage(config.result_path, send_state_path(config),
                     z.server, z.port, tls_of(z), clusters=getattr(z, "clusters", None), **options)


# -- a stand-alone sender process ----------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """python -m plogd.stages.send --results R --state S --server H [--port P] [TLS options]:
    follow R and send it until SIGTERM/SIGINT (what the multi-process runner's
    zabbix-sender process runs; used by the integration tests)."""
    p = argparse.ArgumentParser(prog="python -m plogd.stages.send")
    p.add_argument("--results", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--server")
    p.add_argument("--port", type=int)
    p.add_argument("--tls-connect", choices=["unencrypted", "cert", "psk"])
    p.add_argument("--tls-ca-file")
    p.add_argument("--tls-cert-file")
    p.add_argument("--tls-key-file")
    p.add_argument("--tls-server-name")
    p.add_argument("--tls-psk-identity")
    p.add_argument("--tls-psk-file")
    p.add_argument("--agent-config", help="take ServerActive and TLS* from this Zabbix agent "
                   "configuration (the options given here win)")
    p.add_argument("--failed-retry-seconds", type=float, default=600)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=10,
                   help="seconds for one exchange with the server, reply included")
    p.add_argument("--interval", type=float, default=0.2)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server, port, tls, clusters = a.server, a.port, None, None
    try:
        if a.agent_config:
            from ..zabbix_config import read_agent_config
            agent = read_agent_config(a.agent_config)
            if not server and not port:
                clusters = agent.clusters
            server, port, tls = server or agent.server, port or agent.port, agent.tls
        if a.tls_connect and a.tls_connect != "unencrypted":
            tls = TLSConfig(a.tls_connect, a.tls_ca_file, a.tls_cert_file, a.tls_key_file,
                            a.tls_server_name, a.tls_psk_identity, a.tls_psk_file)
        elif a.tls_connect == "unencrypted":
            tls = None
        stage = SendStage(a.results, a.state, server or "127.0.0.1", port or 10051, tls,
                          clusters=clusters, failed_retry_seconds=a.failed_retry_seconds,
                          batch_size=a.batch_size, timeout=a.timeout)
    except Exception as e:
        if type(e).__name__ not in ("TLSConfigError", "AgentConfigError"):
            raise
        print(f"plogd: {e}", file=sys.stderr)
        return 2
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    while not stop:
        stage.poll()
        time.sleep(a.interval)
    stage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Zabbix output's sending logic: what Zabbix needs beyond "send a batch".

The output runner (plogd.outputs.runner) reads the spool and hands batches to
`ZabbixSender.deliver`; a SendError (server stopped, TLS refused, timeouts) makes the runner
send the same batch again with backoff. Each value goes with the fixed clock and ns of its
window, so Zabbix stores a value it already has only once.

Failed values: the server answers only "processed: N; failed: M". When M > 0 the batch is
split in halves and each half re-sent until the failing values are found (re-sending stored
values is harmless). Their keys are logged by name (rate-limited), and the values are kept
in a retry list (persisted) and re-sent with backoff for `failed_retry_seconds` — the item
may yet be created by low-level discovery — then given up with a log line and a counter.

Low-level discovery: a record of a `by:` metric carries its group ({"status": 200}); from
the metric's key template (`nginx.status[{status}]`) the sender knows the metric's discovery
key (`nginx.status.discovery`, see
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

import json
import logging
import re
import time
from collections.abc import Callable

from ... import checkpoint, monitoring
from ...heartbeat import beat
from .transport import ZabbixTransport, clusters_text, TLSConfig

_log = logging.getLogger("plogd.send")

LOG_EVERY = 60.0         # seconds between two log lines about refused keys
LLD_RETRY_MAX = 600.0    # longest wait before a refused discovery set is sent again
RETRY_MAX = 60.0         # longest wait before a refused value is sent again


# -- discovery -------------------------------------------------------------------------------

def discovery_key(template: str, by: str) -> str:
    """`nginx.status[{status}]` -> `nginx.status.discovery`; a placeholder outside the
    brackets is removed: `nginx.{vhost}.requests` -> `nginx.requests.discovery`."""
    base = template.split("[", 1)[0]
    base = base.replace("{" + by + "}", "")
    base = re.sub(r"\.{2,}", ".", base).strip(".")
    return f"{base}.discovery"


def discovery_macro(by: str) -> str:
    return "{#" + re.sub(r"[^A-Z0-9_.]", "_", by.upper()) + "}"


def _lld_ident(record: dict) -> str | None:
    """`host \x00 discovery key` of a record of a discovered item; None for others."""
    by, template = record.get("by"), record.get("template")
    if by is None or template is None or record.get("member") is None:
        return None
    return f"{record['host']}\x00{record.get('discovery') or discovery_key(template, by)}"


def _member(value) -> str:
    """A group value as a discovery member: as it stands in the item key, unquoted."""
    return "-" if value is None else str(value)


class LLDTagger:
    """Adds "by", "member" and "template" to the records of `by:` metrics, from their
    structured fields, so that the sender can announce their members by discovery. plogd's
    own values per input or output (`plogd.lines[INPUT]` ...) also get "discovery": one set
    over the inputs, one over the outputs, so that one template fits every host whatever
    they are called.

        tagger = LLDTagger(config.inputs)      # inputs with .name and .metrics
        record = tagger.tag(record)
    """
    OWN = {"input": monitoring.INPUTS_DISCOVERY, "output": monitoring.OUTPUTS_DISCOVERY}

    def __init__(self, inputs):
        self._templates = {(spec.name, m.name): (m.key, m.by)
                           for spec in inputs for m in spec.metrics if getattr(m, "by", None)}

    def tag(self, record: dict) -> dict:
        group = record.get("group")
        if "by" in record or not isinstance(group, dict) or len(group) != 1:
            return record              # tagged by an older plogd, or not discovered
        (by, value), = group.items()
        if record.get("input") == monitoring.PREFIX:
            if by in self.OWN:
                suffix = str(record.get("metric", ""))[len(monitoring.PREFIX) + 1:]
                record.update(by=by, member=_member(value), discovery=self.OWN[by],
                              template=f"{monitoring.PREFIX}.{suffix}[{{{by}}}]")
            return record
        found = self._templates.get((record.get("input"), record.get("metric")))
        if found is not None and found[1] == by:
            record.update(by=by, member=_member(value), template=found[0])
        return record


# -- the sender ---------------------------------------------------------------------------

def _check_send_state(state: dict) -> None:
    """Damaged when send.json is not in the shape ZabbixSender saves (or an older one did)."""
    shape: dict[str, type | tuple[type, ...]] = {
        "offset": int, "inode": (int, type(None)), "retry": list, "lld": dict, "totals": dict,
        "own_clocks": dict}
    for key, kind in shape.items():
        if key in state and not isinstance(state[key], kind):
            raise checkpoint.Damaged(f"{key!r} holds {type(state[key]).__name__}")
    if not all(isinstance(e, dict) and {"r", "since", "next", "n"} <= e.keys()
               for e in state.get("retry", [])):
        raise checkpoint.Damaged("'retry' holds something else than retried records")
    if not all(isinstance(e, dict) and "macro" in e and isinstance(e.get("members"), dict)
               for e in state.get("lld", {}).values()):
        raise checkpoint.Damaged("'lld' holds something else than discovery entries")


class ZabbixSender:
    """Delivers batches to Zabbix: discovery first, refused values found and retried,
    plogd.* values once per clock. Its state: send.json (totals, the plogd.* clocks) and its
    .retry and .lld siblings. Raises SendError when the server cannot be reached."""

    def __init__(self, state_path: str, server: str = "127.0.0.1",
                 port: int = 10051, tls: TLSConfig | None = None, *, inputs=(),
                 clusters: list[list[tuple[str, int]]] | None = None,
                 transport: Callable[[list[dict]], int] | None = None,
                 failed_retry_seconds: float = 600, lld_member_ttl: float = 7 * 86400,
                 lld_resend_seconds: float = 3600, lld_max_members: int = 1000,
                 timeout: float = 10,
                 max_retry: int = 100_000,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.state_path = state_path
        self.tagger = LLDTagger(inputs)
        clusters = clusters or [[(server, port)]]     # HA nodes of each server (ServerActive)
        self.address = clusters_text(clusters)
        self.transport = transport or ZabbixTransport(clusters, tls, timeout=timeout)
        self.failed_retry_seconds = failed_retry_seconds
        self.lld_member_ttl = lld_member_ttl
        self.lld_resend_seconds = lld_resend_seconds
        self.lld_max_members = lld_max_members
        self.max_retry = max_retry
        self.clock = clock               # monotonic seconds (tests pass their own)
        self._wall = wall
        self.lld_sent = 0
        self._logged_keys: dict[str, float] = {}   # refused key -> when last logged
        self._waiting_logged: set[str] = set()     # keys logged once as waiting for discovery
        # The state is three files, each written when it changes: send.json (totals;
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
        # where an older plogd had got to in the spool (the runner keeps the cursor now)
        self.legacy_cursor = ({"offset": state.get("offset", 0), "inode": state.get("inode")}
                              if "offset" in state else None)
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
            problem, aside = str(e), checkpoint.move_aside(path)
        if path == self.state_path:
            cost = ("the totals start again from 0, and a plogd.* value of the current "
                    "interval may be sent a second time")
        elif path == self.retry_path:
            cost = "the values waiting for a retry are not retried"
        else:
            cost = "the discovery sets start empty and are sent again as members come"
        _log.error("cannot use the sender state %s (%s)%s; %s", path, problem,
                   f", kept as {aside}" if aside else "", cost)
        return {}

    def _save(self, retry: bool = False, lld: bool = False) -> None:
        """Save the totals, and the retry list and discovery sets if they changed."""
        if retry:
            checkpoint.save(self.retry_path, {"retry": self.retry})
        if lld:
            checkpoint.save(self.lld_path, {"lld": self.lld})
        checkpoint.save(self.state_path, {
            "own_clocks": self.own_clocks,
            "totals": {"sent": self.sent, "refused": self.refused, "waited": self.waited,
                       "given_up": self.given_up}})

    def stats(self) -> dict:
        """Self-monitoring values beside the runner's (in output.zabbix.json)."""
        return {"sent": self.sent, "refused": self.refused, "given_up": self.given_up,
                "waited": self.waited, "lld_sent": self.lld_sent,
                "retry_waiting": len(self.retry)}

    # -- a batch -------------------------------------------------------------------------
    def deliver(self, records: list[dict]) -> None:
        """Send a batch (SendError: nothing of it counts as sent; send it again)."""
        self._deliver([self.tagger.tag(r) for r in records])

    def maintenance(self) -> None:
        """Between batches: the refused values and discovery sets that are due again."""
        self._retry_due()
        self._lld_maintenance()

    def _deliver(self, records: list[dict]) -> None:
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
            fresh: list[dict] = []
            others: list[dict] = []
            for r in failed:
                (fresh if self._is_fresh(r, wall) else others).append(r)
            self.waited += len(fresh)
            self.refused += len(others)
            self._log_waiting(fresh)
            if others:
                self._log_refused(others, "will retry for %d s (the item may yet be discovered)"
                                  % self.failed_retry_seconds)
        self._save(retry=bool(failed), lld=lld_changed)

    def _once_per_clock(self, records: list[dict]) -> tuple[list[dict], dict]:
        """Drop plogd.* values of a clock already sent: one clock, one value, however often
        a restart makes the set of an interval again (records are in clock order). Returns
        the records to send and the clocks to remember once they are sent."""
        kept: list[dict] = []
        clocks: dict[str, int] = {}
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
        return (self._send_finding_failed(records[:middle])
                + self._send_finding_failed(records[middle:]))

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
                    e["next"] = wall + min(5 * 2 ** (e["n"] - 1), RETRY_MAX)
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
        now = self.clock()
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
        oldest = min(members, key=members.__getitem__)
        del members[oldest]
        now = self.clock()
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

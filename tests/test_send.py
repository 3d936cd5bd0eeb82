"""The Zabbix output under its runner, without sockets: a fake trapper that behaves like
the real one (a duplicate (item, clock, ns) is "processed" and stored once, an unknown key
"failed", the answer never says which)."""
import asyncio
import json
import logging
import os

import pytest

from plogd.config import ZabbixConfig
from plogd.outputs.base import OutputContext
from plogd.outputs.runner import OutputRunner
from plogd.outputs.zabbix import ZabbixOutput
from plogd.outputs.zabbix.sender import ZabbixSender, discovery_key, discovery_macro
from plogd.outputs.zabbix.transport import SendError, TLSConfig, TLSConfigError, tls_context


class FakeTrapper:
    def __init__(self, items):
        self.items = set(items)
        self.stored = {}
        self.requests = []
        self.down = False
        self.lld = {}

    def __call__(self, records):
        if self.down:
            raise SendError("[Errno 111] Connection refused")
        self.requests.append([r["key"] for r in records])
        failed = 0
        for r in records:
            if r["key"].endswith(".discovery") and (r["host"], r["key"]) in self.items:
                self.lld[r["host"], r["key"]] = json.loads(r["value"])
                continue
            if (r["host"], r["key"]) not in self.items:
                failed += 1
                continue
            self.stored.setdefault((r["host"], r["key"], r["clock"], r["ns"]), r["value"])
        return failed


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def rec(key, clock, value=1, host="web01", **extra):
    return {"host": host, "key": key, "clock": clock, "ns": 0, "value": value, **extra}


def append(path, records, partial=b""):
    with open(path, "ab") as f:
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records) + partial)


class Stage:
    """The Zabbix output and its runner, stepped by hand: `poll()` is what the send stage
    does in one pass (at most `max_batches_per_poll` batches)."""
    RUNNER = ("up", "_retry_at", "_backoff")

    def __init__(self, tmp_path, trapper, clock, batch_size=1000, max_batches_per_poll=10,
                 inputs=(), **kw):
        z = ZabbixConfig(server="127.0.0.1", port=10051, host="web01")
        self.output = ZabbixOutput("zabbix", vars(z), OutputContext("web01", str(tmp_path), 60))
        self.output.sender = ZabbixSender(str(tmp_path / "send.json"), transport=trapper,
                                          inputs=inputs, clock=clock, wall=clock, **kw)
        self.runner = OutputRunner(self.output, str(tmp_path / "results.jsonl"), str(tmp_path),
                                   batch_size=batch_size, clock=clock)
        self.max_batches = max_batches_per_poll

    def poll(self):
        async def steps():
            for _ in range(self.max_batches):
                if not await self.runner.step():
                    break
        asyncio.run(steps())

    @property
    def offset(self):
        return self.runner.reader.cursor.offset

    def backlog_bytes(self):
        return self.runner.backlog()

    def __getattr__(self, name):
        owner = self.runner if name in self.RUNNER else self.output.sender
        return getattr(owner, name)


def saved_offset(tmp_path):
    return json.loads((tmp_path / "output.zabbix.json").read_text())["cursor"]["offset"]


def stage(tmp_path, trapper, clock, **kw):
    return Stage(tmp_path, trapper, clock, **kw)


def test_sends_complete_lines_in_clock_order_and_persists_the_offset(tmp_path):
    t, clock = FakeTrapper({("web01", "a"), ("web01", "b")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("a", 120), rec("b", 60)], partial=b'{"host": "web01", "key": "a"')
    s = stage(tmp_path, t, clock)
    s.poll()
    assert t.requests == [["b", "a"]]          # oldest first
    assert s.offset == len(path.read_bytes()) - len(b'{"host": "web01", "key": "a"')
    assert saved_offset(tmp_path) == s.offset
    s.poll()
    assert len(t.requests) == 1                # nothing new, the partial line waits
    # a restart continues from the saved offset
    s2 = stage(tmp_path, t, clock)
    with open(path, "ab") as f:
        f.write(b', "clock": 180, "ns": 0, "value": 3}\n')
    s2.poll()
    assert t.requests[-1] == ["a"] and t.stored["web01", "a", 180, 0] == 3


def test_batches_are_bounded(tmp_path):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", c) for c in range(25)])
    s = stage(tmp_path, t, clock, batch_size=10, max_batches_per_poll=2)
    s.poll()
    assert [len(r) for r in t.requests] == [10, 10]
    s.poll()
    assert [len(r) for r in t.requests] == [10, 10, 5]
    assert len(t.stored) == 25


def test_outage_backs_off_logs_once_per_state_change_and_loses_nothing(tmp_path, caplog):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    s = stage(tmp_path, t, clock)
    t.down = True
    attempts = []
    caplog.set_level(logging.INFO, "plogd.send")
    for i in range(200):                       # 200 s of outage, polled every 0.2 s... and more
        append(path, [rec("a", i)])
        for _ in range(5):
            before = s._retry_at
            s.poll()
            if s._retry_at != before:
                attempts.append(clock.t)
            clock.t += 0.2
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps[:6] == pytest.approx([1, 2, 4, 8, 16, 32], abs=0.21)
    assert max(gaps) <= 60.2
    assert len(caplog.records) == 1 and "cannot send" in caplog.records[0].message
    t.down = False
    clock.t += 60
    while s.backlog_bytes():
        s.poll()
    assert sorted(c for _, _, c, _ in t.stored) == list(range(200))
    assert s.up and "reachable again" in caplog.records[-1].message
    assert len(caplog.records) == 2


def test_crash_after_send_before_offset_resends_harmlessly(tmp_path):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", c, value=c) for c in range(10)])
    s = stage(tmp_path, t, clock)
    s.runner.save = lambda: (_ for _ in ()).throw(KeyboardInterrupt)   # "killed" before the save
    with pytest.raises(KeyboardInterrupt):
        s.poll()
    stage(tmp_path, t, clock).poll()            # restart: same batch again
    assert len(t.requests) == 2 and len(t.stored) == 10


def test_failed_values_are_found_by_bisecting_logged_retried_then_given_up(tmp_path, caplog):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", c) for c in range(7)] + [rec("nope", 3)])
    s = stage(tmp_path, t, clock, failed_retry_seconds=100)
    caplog.set_level(logging.INFO, "plogd.send")
    s.poll()
    assert len(t.stored) == 7
    assert [e["r"]["key"] for e in s.retry] == ["nope"]
    assert "web01:nope" in caplog.text and "web01:a" not in caplog.text
    assert s.refused == 1
    # the item appears (e.g. discovered): the retry stores it
    clock.t += 6
    t.items.add(("web01", "nope"))
    s.poll()
    assert ("web01", "nope", 3, 0) in t.stored and s.retry == [] and s.given_up == 0


def test_refused_value_is_given_up_after_the_retry_time(tmp_path, caplog):
    t, clock = FakeTrapper(set()), Clock()
    append(tmp_path / "results.jsonl", [rec("nope", 1)])
    s = stage(tmp_path, t, clock, failed_retry_seconds=100)
    caplog.set_level(logging.INFO, "plogd.send")
    for _ in range(600):
        s.poll()
        clock.t += 1
    assert s.retry == [] and s.given_up == 1
    assert "giving up 1 value" in caplog.text
    # retries were spaced by backoff, not every poll
    assert len(t.requests) < 15
    # a restart does not bring it back
    assert json.loads((tmp_path / "send.retry.json").read_text())["retry"] == []


def test_all_refused_is_not_bisected(tmp_path):
    t, clock = FakeTrapper(set()), Clock()
    append(tmp_path / "results.jsonl", [rec("x", c) for c in range(64)])
    s = stage(tmp_path, t, clock)
    s.poll()
    assert len(t.requests) == 1 and len(s.retry) == 64


def test_discovery_key_and_macro():
    assert discovery_key("nginx.status[{status}]", "status") == "nginx.status.discovery"
    assert discovery_key("nginx.{vhost}.requests", "vhost") == "nginx.requests.discovery"
    assert discovery_macro("status") == "{#STATUS}"
    assert discovery_macro("server_name") == "{#SERVER_NAME}"


def lld_rec(status, clock, value=1):
    return rec(f"nginx.status[{status}]", clock, value, by="status", member=str(status),
               template="nginx.status[{status}]")


def test_discovery_is_sent_before_the_first_value_of_a_new_member(tmp_path, caplog):
    caplog.set_level(logging.INFO, "plogd.send")
    t, clock = FakeTrapper({("web01", "nginx.status.discovery"), ("web01", "nginx.status[200]")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [lld_rec(200, 60)])
    s = stage(tmp_path, t, clock)
    s.poll()
    assert t.requests == [["nginx.status.discovery"], ["nginx.status[200]"]]
    assert t.lld["web01", "nginx.status.discovery"] == [{"{#STATUS}": "200"}]
    append(path, [lld_rec(200, 120), lld_rec(404, 120)])
    s.poll()
    assert t.requests[2] == ["nginx.status.discovery"]          # 404 is new: the full set first
    assert t.lld["web01", "nginx.status.discovery"] == [{"{#STATUS}": "200"}, {"{#STATUS}": "404"}]
    # the 404 item does not exist yet (config cache): it waits, then is stored
    assert [e["r"]["key"] for e in s.retry] == ["nginx.status[404]"]
    t.items.add(("web01", "nginx.status[404]"))
    clock.t += 6
    s.poll()
    assert ("web01", "nginx.status[404]", 120, 0) in t.stored
    # a new member's values waiting for the item are not reported as errors
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "waiting for discovery: 1 new item(s) not yet known to the server" in caplog.text
    assert caplog.text.count("web01:nginx.status[404]") == 1        # logged once
    # persisted across a restart: no new announcement for known members
    n = len(t.requests)
    s2 = stage(tmp_path, t, clock)
    append(path, [lld_rec(404, 180)])
    s2.poll()
    assert t.requests[n:] == [["nginx.status[404]"]]


def test_discovery_drops_members_not_seen_and_resends(tmp_path):
    t, clock = FakeTrapper({("web01", "nginx.status.discovery")}), Clock()
    path = tmp_path / "results.jsonl"
    s = stage(tmp_path, t, clock, lld_member_ttl=100, lld_resend_seconds=1000)
    append(path, [lld_rec(200, 60), lld_rec(500, 60)])
    s.poll()
    clock.t += 50
    append(path, [lld_rec(200, 120)])
    s.poll()
    clock.t += 60
    s.poll()
    assert t.lld["web01", "nginx.status.discovery"] == [{"{#STATUS}": "200"}]


def test_discovery_during_outage_is_announced_when_back(tmp_path):
    t, clock = FakeTrapper({("web01", "nginx.status.discovery"), ("web01", "nginx.status[200]")}), Clock()
    append(tmp_path / "results.jsonl", [lld_rec(200, 60)])
    s = stage(tmp_path, t, clock)
    t.down = True
    s.poll()
    t.down = False
    clock.t += 2
    s.poll()
    assert t.requests == [["nginx.status.discovery"], ["nginx.status[200]"]]


def test_replaced_result_file_is_sent_from_its_start(tmp_path):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("a", c) for c in range(5)])
    s = stage(tmp_path, t, clock)
    s.poll()
    path.rename(tmp_path / "old.jsonl")
    append(path, [rec("a", 100)])
    s.poll()
    assert ("web01", "a", 100, 0) in t.stored


def test_malformed_line_is_skipped_and_counted(tmp_path):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("a", 1)])
    with open(path, "ab") as f:
        f.write(b"garbage\n")
    append(path, [rec("a", 2)])
    s = stage(tmp_path, t, clock)
    s.poll()
    assert s.runner.reader.malformed == 1 and len(t.stored) == 2


def test_psk_needs_python_313(tmp_path):
    import ssl
    key = tmp_path / "psk.key"
    key.write_text("ab" * 32)
    tls = TLSConfig("psk", psk_identity="id", psk_file=str(key))
    if hasattr(ssl.SSLContext, "set_psk_client_callback"):
        assert tls_context(tls) is not None
    else:
        with pytest.raises(TLSConfigError, match="Python >= 3.13"):
            tls_context(tls)


def test_cert_needs_its_files():
    with pytest.raises(TLSConfigError, match="tls_ca_file"):
        tls_context(TLSConfig("cert", cert_file="c", key_file="k"))


def test_rotated_result_files_are_finished_in_order_then_removed(tmp_path):
    from plogd.spool import backlog as spool_backlog
    from plogd.spool import peek_cursor, remove_passed
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("a", c) for c in range(0, 5)])
    s = stage(tmp_path, t, clock, batch_size=3, max_batches_per_poll=1)
    s.poll()                                   # 3 of 5 sent
    path.rename(tmp_path / "results.jsonl.1")  # the writer rotates ...
    append(path, [rec("a", c) for c in range(5, 10)])
    path.rename(tmp_path / "results.jsonl.2")  # ... twice while the sender is behind
    append(path, [rec("a", c) for c in range(10, 12)])
    behind = spool_backlog(str(path), peek_cursor(str(tmp_path), "zabbix"))
    assert behind == s.backlog_bytes() > 0
    for _ in range(10):
        s.poll()
        remove_passed(str(path), [s.runner.reader.cursor])     # what the send stage does
    assert [k for k in sorted(c for _, _, c, _ in t.stored)] == list(range(12))
    assert sorted(p.name for p in tmp_path.glob("results.jsonl*")) == ["results.jsonl"]
    assert s.backlog_bytes() == 0
    assert spool_backlog(str(path), peek_cursor(str(tmp_path), "zabbix")) == 0
    # oldest first across the files
    assert [c for _, _, c, _ in t.stored] == list(range(12))


def test_stats(tmp_path):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", 1), rec("b", 1)])
    s = stage(tmp_path, t, clock)
    s.poll()
    st = json.loads((tmp_path / "output.zabbix.json").read_text())["totals"]
    assert (st["sent"], st["refused"], st["retry_waiting"]) == (1, 1, 1)
    assert s.backlog_bytes() == 0 and s.up


def test_lld_tagger_names_the_member_from_the_records_group():
    from types import SimpleNamespace as NS
    from plogd.outputs.zabbix.sender import LLDTagger
    inputs = [NS(name="web", metrics=[NS(key="nginx.requests", name="nginx.requests", by=None),
                                      NS(key="nginx.status[{status}]", name="nginx.status",
                                         by="status"),
                                      NS(key="nginx.bytes[{path}]", name="nginx.bytes", by="path")])]
    tagger = LLDTagger(inputs)

    def r(metric, group=None, input="web"):
        return {"key": "k", "input": input, "metric": metric,
                **({"group": group} if group else {})}
    assert tagger.tag(r("nginx.status", {"status": 404})) == {
        **r("nginx.status", {"status": 404}), "by": "status", "member": "404",
        "template": "nginx.status[{status}]"}
    assert tagger.tag(r("nginx.bytes", {"path": '/a "b'}))["member"] == '/a "b'
    assert tagger.tag(r("nginx.bytes", {"path": None}))["member"] == "-"
    assert tagger.tag(r("nginx.requests")) == r("nginx.requests")
    assert tagger.tag(r("nginx.status", {"status": 404}, "other")) == r("nginx.status",
                                                                        {"status": 404}, "other")
    # a record an older plogd tagged in the spool stays as it is
    old = {"key": "nginx.status[404]", "by": "status", "member": "404",
           "template": "nginx.status[{status}]"}
    assert tagger.tag(dict(old)) == old


def test_refused_keys_are_each_named_at_once_then_rate_limited(tmp_path, caplog):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    s = stage(tmp_path, t, clock)
    caplog.set_level(logging.INFO, "plogd.send")
    append(path, [rec("a", 1), rec("x", 1)])
    s.poll()
    append(path, [rec("a", 2), rec("y", 2), rec("x", 2)])
    s.poll()                        # y is new: named at once; x again: not repeated
    named = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(named) == 2 and "web01:x" in named[0] and "keys: web01:y " in named[1]
    for _ in range(10):
        append(path, [rec("x", 3)])
        s.poll()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]   # none given up yet


@pytest.mark.parametrize("name, damage", [
    ("send.json", b'{"offset": 12, "ino'), ("send.json", b""), ("send.json", b"\x00\xffgarbage"),
    ("send.json", b"[1, 2]"), ("send.json", b'{"offset": "12"}'), ("send.json", b'{"retry": [1]}'),
    ("send.json", b'{"lld": {"web01\\u0000x": []}}'),
    ("output.zabbix.json", b'{"cursor": {"offset": 12, "ino'), ("output.zabbix.json", b""),
    ("output.zabbix.json", b"[1, 2]"), ("output.zabbix.json", b'{"cursor": {"offset": "12"}}'),
    ("output.zabbix.json", b'{"cursor": {}, "totals": []}')])
def test_a_damaged_state_is_kept_aside_and_the_spool_sent_again(tmp_path, caplog, name, damage):
    """Before: a wrong shape ended start-up with a traceback (AttributeError, TypeError).
    The Zabbix sender's own state (send.json) and the runner's cursor (output.zabbix.json)
    are each kept aside, with what it costs."""
    cost = {"send.json": "the totals start again from 0",
            "output.zabbix.json": "sending the result files again from their start"}[name]
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", 60), rec("a", 120)])
    (tmp_path / name).write_bytes(damage)
    s = stage(tmp_path, t, clock)
    s.poll()
    assert sorted(t.stored) == [("web01", "a", 60, 0), ("web01", "a", 120, 0)]
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith(f"{name}.damaged-")]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_bytes() == damage
    assert cost in caplog.text


def test_plogd_own_per_input_values_are_tagged_for_the_inputs_discovery():
    from plogd.outputs.zabbix.sender import LLDTagger
    tagger = LLDTagger([])
    own = {"key": 'plogd.lines["web 1"]', "input": "plogd", "metric": "plogd.lines",
           "group": {"input": "web 1"}}
    assert tagger.tag(dict(own)) == {**own, "by": "input", "member": "web 1",
                                     "template": "plogd.lines[{input}]",
                                     "discovery": "plogd.inputs.discovery"}
    out = {"key": "plogd.output.up[line]", "input": "plogd", "metric": "plogd.output.up",
           "group": {"output": "line"}}
    assert tagger.tag(dict(out))["discovery"] == "plogd.outputs.discovery"
    assert tagger.tag(dict(out))["template"] == "plogd.output.up[{output}]"
    beat = {"key": "plogd.heartbeat", "input": "plogd", "metric": "plogd.heartbeat"}
    assert tagger.tag(dict(beat)) == beat
    assert discovery_macro("input") == "{#INPUT}"


def test_inputs_discovery_is_sent_before_the_first_per_input_values(tmp_path):
    t, clock = FakeTrapper({("web01", "plogd.inputs.discovery"), ("web01", "plogd.heartbeat"),
                            ("web01", "plogd.lines[web]"), ("web01", "plogd.lines[api]")}), Clock()
    append(tmp_path / "results.jsonl", [
        rec("plogd.heartbeat", 60, input="plogd", metric="plogd.heartbeat"),
        rec("plogd.lines[web]", 60, input="plogd", metric="plogd.lines", group={"input": "web"}),
        rec("plogd.lines[api]", 60, input="plogd", metric="plogd.lines", group={"input": "api"})])
    stage(tmp_path, t, clock).poll()
    assert t.requests[0] == ["plogd.inputs.discovery"]
    assert t.lld["web01", "plogd.inputs.discovery"] == [{"{#INPUT}": "api"}, {"{#INPUT}": "web"}]
    assert len(t.stored) == 3


def test_a_refused_discovery_set_is_retried_with_backoff_until_the_rule_exists(tmp_path, caplog):
    t, clock = FakeTrapper({("web01", "nginx.status[200]")}), Clock()
    append(tmp_path / "results.jsonl", [lld_rec(200, 60)])
    s = stage(tmp_path, t, clock)
    s.poll()
    assert t.requests == [["nginx.status.discovery"], ["nginx.status[200]"]]   # values anyway
    assert "is there a trapper discovery rule with key nginx.status.discovery" in caplog.text
    for _ in range(30):                     # 30 s: tries at +5, +15 (5, 10, 20 s apart)
        clock.t += 1
        s.poll()
    tries = sum(r == ["nginx.status.discovery"] for r in t.requests)
    assert tries == 3
    # a restart keeps it due; the rule appears: the next try announces the set
    s = stage(tmp_path, t, clock)
    t.items.add(("web01", "nginx.status.discovery"))
    for _ in range(30):
        clock.t += 1
        s.poll()
    assert t.lld["web01", "nginx.status.discovery"] == [{"{#STATUS}": "200"}]
    assert sum(r == ["nginx.status.discovery"] for r in t.requests) == 4   # then no more


def test_discovery_members_are_capped_across_windows(tmp_path, caplog):
    """A by: over client-chosen values (paths) stays bounded, not only within one window:
    the least recently seen members make room."""
    t, clock = FakeTrapper({("web01", "nginx.status.discovery")}), Clock()
    path = tmp_path / "results.jsonl"
    s = stage(tmp_path, t, clock, lld_max_members=3)
    for w in range(10):
        append(path, [lld_rec(200, 60 * w), lld_rec(1000 + w, 60 * w)])    # 200 and a new one
        clock.t += 5
        s.poll()
    assert t.lld["web01", "nginx.status.discovery"] == [
        {"{#STATUS}": "1008"}, {"{#STATUS}": "1009"}, {"{#STATUS}": "200"}]
    saved = json.loads((tmp_path / "send.lld.json").read_text())["lld"]
    assert len(saved["web01\x00nginx.status.discovery"]["members"]) == 3
    assert caplog.text.count("more than 3 members (zabbix.lld_max_members)") == 1   # per minute


def test_state_is_written_in_proportion_to_what_changed(tmp_path):
    """send.json (offset, totals) is small after every batch; the discovery sets and the
    retry list are rewritten only when they change."""
    t, clock = FakeTrapper({("web01", "nginx.status.discovery")} |
                           {("web01", f"nginx.status[{m}]") for m in range(500)}), Clock()
    path = tmp_path / "results.jsonl"
    s = stage(tmp_path, t, clock)
    append(path, [lld_rec(m, 60) for m in range(500)])
    s.poll()
    lld_file = os.stat(tmp_path / "send.lld.json")
    for w in range(2, 10):                       # the same members, window after window
        append(path, [lld_rec(m, 60 * w) for m in range(500)])
        clock.t += 60
        s.poll()
    assert os.stat(tmp_path / "send.lld.json").st_ino == lld_file.st_ino     # not rewritten
    assert not (tmp_path / "send.retry.json").exists()
    assert os.path.getsize(tmp_path / "send.json") < 500
    assert len(t.stored) == 500 * 9


def test_older_state_with_retry_and_discovery_in_send_json_is_taken_over(tmp_path):
    t, clock = FakeTrapper({("web01", "nginx.status.discovery")}), Clock()
    (tmp_path / "send.json").write_text(json.dumps({
        "offset": 0, "retry": [{"r": rec("x", 1), "since": 1000, "next": 2000, "n": 1}],
        "lld": {"web01\x00nginx.status.discovery": {"macro": "{#STATUS}", "members": {"200": 990},
                                                    "sent": 990, "announced": True}}}))
    s = stage(tmp_path, t, clock)
    assert [e["r"]["key"] for e in s.retry] == ["x"]
    assert list(s.lld["web01\x00nginx.status.discovery"]["members"]) == ["200"]


def test_own_values_are_sent_once_per_clock_whatever_a_restart_makes_again(tmp_path):
    t, clock = FakeTrapper({("web01", "plogd.restarts"), ("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("plogd.restarts", 60, value=0)])
    stage(tmp_path, t, clock).poll()
    # a restart within the interval: the set of clock 60 is made again, with other values
    append(path, [rec("plogd.restarts", 60, value=1), rec("a", 60), rec("plogd.restarts", 120, value=1)])
    s = stage(tmp_path, t, clock)
    t.down = True                              # and the server is away for a moment:
    s.poll()                                   # the batch waits, its clocks are not taken yet
    t.down = False
    clock.t += 2
    s.poll()
    assert t.stored == {("web01", "plogd.restarts", 60, 0): 0, ("web01", "a", 60, 0): 1,
                        ("web01", "plogd.restarts", 120, 0): 1}
    assert sum(r.count("plogd.restarts") for r in t.requests) == 2


def test_a_value_refused_by_each_of_several_servers_is_one_refused_value():
    from zabbix_utils.types import TrapperResponse
    from plogd.outputs.zabbix.transport import refused_count

    def reply(failed, total):
        return {"response": "success", "info": f"processed: {total - failed}; failed: {failed}; "
                                               f"total: {total}; seconds spent: 0.000100"}
    response = TrapperResponse()
    response.details = {}
    for node, failures in (("a:10051", (1, 0)), ("b:10051", (1, 2))):     # two chunks each
        for i, failed in enumerate(failures, 1):
            response.add(reply(failed, 250), i)
            response.details.setdefault(node, []).append(TrapperResponse(i).add(reply(failed, 250)))
    assert response.failed == 4
    assert refused_count(response) == 1 + 2


@pytest.mark.parametrize("damage", [b"[1, 2]", b'{"offset": "12", "totals": []}', b"\x00garbage"])
def test_processes_beside_the_sender_read_a_damaged_state_as_nothing_sent(tmp_path, damage):
    """The reader's spool check and the self-monitoring read the runner's state from other
    processes: a damaged one (the runner keeps it aside at its next start) is taken as
    "nothing sent yet", not an AttributeError or TypeError in the aggregator or reader."""
    from types import SimpleNamespace as NS
    from plogd import monitoring
    from plogd.spool import backlog as spool_backlog, peek_cursor
    result = tmp_path / "results.jsonl"
    append(result, [rec("a", 60)])
    (tmp_path / "output.zabbix.json").write_bytes(damage)
    assert spool_backlog(str(result), peek_cursor(str(tmp_path), "zabbix")) == result.stat().st_size
    outputs = [NS(name="zabbix", type="zabbix")]
    own = {v.key: v.value for v in monitoring.values(120.0, {}, {}, 0,
                                                     (str(result), str(tmp_path), outputs))}
    assert own["plogd.sent"] == 0 and own["plogd.spool_backlog"] == result.stat().st_size
    assert own["plogd.output.backlog[zabbix]"] == result.stat().st_size


def test_a_full_disk_while_saving_state_is_an_outage_not_a_crash(tmp_path, caplog, monkeypatch):
    """Before: ENOSPC while saving send.json ended the sender (in --multi: a pipeline
    restart). Now the batch waits like an outage, the cursor is kept in memory, one line is
    logged, and once the disk takes writes again everything is delivered and saved."""
    import errno
    from plogd import checkpoint
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", c) for c in range(5)])
    s = stage(tmp_path, t, clock)
    real_save = checkpoint.save

    def full(path, state):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint, "save", full)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        s.poll()
        clock.t += 2
    assert not s.up and "cannot save its state: No space left on device" in caplog.text
    monkeypatch.setattr(checkpoint, "save", real_save)
    clock.t += 120
    s.poll()
    assert s.up and len(t.stored) == 5
    assert saved_offset(tmp_path) == (tmp_path / "results.jsonl").stat().st_size


def test_a_runner_whose_cursor_cannot_be_saved_goes_on(tmp_path, caplog, monkeypatch):
    import errno
    from plogd import checkpoint
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", 1)])
    s = stage(tmp_path, t, clock)
    s.poll()                                    # the Zabbix state exists: only the cursor fails
    real_save = checkpoint.save

    def full_for_cursor(path, state):
        if path.endswith("output.zabbix.json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, state)
    monkeypatch.setattr(checkpoint, "save", full_for_cursor)
    append(tmp_path / "results.jsonl", [rec("a", 2), rec("a", 3)])
    s.poll()
    assert len(t.stored) == 3 and s.up
    assert caplog.text.count("cannot save its cursor") == 1
    monkeypatch.setattr(checkpoint, "save", real_save)
    append(tmp_path / "results.jsonl", [rec("a", 4)])
    s.poll()
    assert saved_offset(tmp_path) == (tmp_path / "results.jsonl").stat().st_size
    assert "its cursor is saved again" in caplog.text

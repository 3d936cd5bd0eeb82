"""SendStage logic without sockets: a fake trapper that behaves like the real one (a
duplicate (item, clock, ns) is "processed" and stored once, an unknown key "failed", the
answer never says which)."""
import json
import logging

import pytest

from plogd.stages.send import (SendError, SendStage, TLSConfig, TLSConfigError,
                               discovery_key, discovery_macro, tls_context)


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


def stage(tmp_path, trapper, clock, **kw):
    return SendStage(str(tmp_path / "results.jsonl"), str(tmp_path / "send.json"),
                     transport=trapper, clock=clock, wall=clock, **kw)


def test_sends_complete_lines_in_clock_order_and_persists_the_offset(tmp_path):
    t, clock = FakeTrapper({("web01", "a"), ("web01", "b")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("a", 120), rec("b", 60)], partial=b'{"host": "web01", "key": "a"')
    s = stage(tmp_path, t, clock)
    s.poll()
    assert t.requests == [["b", "a"]]          # oldest first
    assert s.offset == len(path.read_bytes()) - len(b'{"host": "web01", "key": "a"')
    assert json.loads((tmp_path / "send.json").read_text())["offset"] == s.offset
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
    s._save = lambda: (_ for _ in ()).throw(KeyboardInterrupt)   # "killed" before the save
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
    assert json.loads((tmp_path / "send.json").read_text())["retry"] == []


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
    assert "wait until the server creates the items: web01:nginx.status[404]" in caplog.text
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
    assert s.malformed == 1 and len(t.stored) == 2


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
    from plogd.stages.send import spool_backlog
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    append(path, [rec("a", c) for c in range(0, 5)])
    s = stage(tmp_path, t, clock, batch_size=3, max_batches_per_poll=1)
    s.poll()                                   # 3 of 5 sent
    path.rename(tmp_path / "results.jsonl.1")  # the writer rotates ...
    append(path, [rec("a", c) for c in range(5, 10)])
    path.rename(tmp_path / "results.jsonl.2")  # ... twice while the sender is behind
    append(path, [rec("a", c) for c in range(10, 12)])
    behind = spool_backlog(str(path), state_path=str(tmp_path / "send.json"))
    assert behind == s.backlog_bytes() > 0
    for _ in range(10):
        s.poll()
    assert [k for k in sorted(c for _, _, c, _ in t.stored)] == list(range(12))
    assert sorted(p.name for p in tmp_path.glob("results.jsonl*")) == ["results.jsonl"]
    assert s.backlog_bytes() == 0
    assert spool_backlog(str(path), state_path=str(tmp_path / "send.json")) == 0
    # oldest first across the files
    assert [c for _, _, c, _ in t.stored] == list(range(12))


def test_stats(tmp_path):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", 1), rec("b", 1)])
    s = stage(tmp_path, t, clock)
    s.poll()
    st = s.stats()
    assert (st["sent"], st["refused"], st["retry_waiting"], st["backlog_bytes"], st["up"]) == (1, 1, 1, 0, 1)


def test_lld_tagger():
    from types import SimpleNamespace as NS
    from plogd.stages.send import LLDTagger
    inputs = [NS(name="web", metrics=[NS(key="nginx.requests", by=None),
                                      NS(key="nginx.status[{status}]", by="status"),
                                      NS(key="nginx.bytes[{path}]", by="path")])]
    tagger = LLDTagger(inputs)
    assert tagger.tag("web", {"key": "nginx.status[404]"}) == {
        "key": "nginx.status[404]", "by": "status", "member": "404", "template": "nginx.status[{status}]"}
    assert tagger.tag("web", {"key": 'nginx.bytes["/a \\"b"]'})["member"] == '/a "b'
    assert tagger.tag("web", {"key": "nginx.requests"}) == {"key": "nginx.requests"}
    assert tagger.tag("other", {"key": "nginx.status[404]"}) == {"key": "nginx.status[404]"}


def test_refused_keys_are_each_named_at_once_then_rate_limited(tmp_path, caplog):
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    path = tmp_path / "results.jsonl"
    s = stage(tmp_path, t, clock)
    caplog.set_level(logging.INFO, "plogd.send")
    append(path, [rec("a", 1), rec("x", 1)])
    s.poll()
    append(path, [rec("a", 2), rec("y", 2), rec("x", 2)])
    s.poll()                        # y is new: named at once; x again: not repeated
    errors = [r.message for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and "web01:x" in errors[0] and "keys: web01:y " in errors[1]
    for _ in range(10):
        append(path, [rec("x", 3)])
        s.poll()
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 2


@pytest.mark.parametrize("damage", [b'{"offset": 12, "ino', b"", b"\x00\xffgarbage",
                                    b"[1, 2]", b'{"offset": "12"}', b'{"retry": [1]}',
                                    b'{"lld": {"web01\\u0000x": []}}'])
def test_a_damaged_state_is_kept_aside_and_the_spool_sent_again(tmp_path, caplog, damage):
    """Before: a wrong shape ended start-up with a traceback (AttributeError, TypeError)."""
    t, clock = FakeTrapper({("web01", "a")}), Clock()
    append(tmp_path / "results.jsonl", [rec("a", 60), rec("a", 120)])
    (tmp_path / "send.json").write_bytes(damage)
    s = stage(tmp_path, t, clock)
    s.poll()
    assert sorted(t.stored) == [("web01", "a", 60, 0), ("web01", "a", 120, 0)]
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("send.json.damaged-")]
    assert len(aside) == 1 and (tmp_path / aside[0]).read_bytes() == damage
    assert "sending the result files again from their start" in caplog.text

"""`plogd --single` with Zabbix and a json line output marked `on_full: drop_oldest` with a
small `max_backlog` (about two windows) over TCP: its receiver is stopped for 30 s in the
middle of a live run, then started again. Its oldest records are dropped, and counted
exactly: the count in its state file (totals.dropped), in its self-monitoring value
plogd.output.dropped[lossy] (in the result file and in Zabbix) is the number of records
written before its cursor minus the number its receiver got, and the receiver got each of
the others exactly once. Zabbix kept receiving on time meanwhile (every window closed before
the receiver came back was in its history by then) and its history equals the truth."""
from e2e_run import HOST, assert_zabbix_has, canonical, run_outage

from plogd.outputs.line.tests.receivers.common import wait_until

DROPPED = "plogd.output.dropped[lossy]"


def test_a_drop_oldest_output_counts_its_drops_exactly(tmp_path, zabbix_host):
    zabbix = zabbix_host({DROPPED: "uint"})
    outage = run_outage(tmp_path, zabbix, "--single",
                        '{type: line, name: lossy, url: "{url}", format: json, '
                        'on_full: drop_oldest, max_backlog: 12000}', "lossy")
    daemon = outage.daemon
    written = daemon.taken("lossy")           # every record before its cursor
    received = outage.receiver.records()
    totals = daemon.output_state("lossy")["totals"]
    assert totals["dropped"] > 0, "max_backlog was reached: records were dropped"
    assert totals["dropped"] == len(written) - len(received)
    assert totals["sent"] == len(received)
    # each record received is one written, none twice: the drops are the difference
    left = canonical(written)
    for record in canonical(received):
        left.remove(record)
    assert len(left) == totals["dropped"]

    own = [r["value"] for r in daemon.records() if r["key"] == DROPPED]
    assert max(own) == totals["dropped"]
    wait_until(lambda: max((v for _, _, v in zabbix.history(HOST, DROPPED, "uint")), default=0)
               == totals["dropped"], f"Zabbix getting {DROPPED} = {totals['dropped']}", 30)

    assert daemon.windows() == outage.expected
    assert_zabbix_has(outage.zabbix, outage.expected)
    assert "lossy (line): its backlog reached max_backlog 12000 bytes" in daemon.text()

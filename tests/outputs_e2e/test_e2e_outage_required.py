"""`plogd --multi` with Zabbix and a required json line output (`on_full: pause`, the
default) over TCP: its receiver is stopped for 30 s in the middle of a live run, then
started again. Nothing is lost: once back, the receiver has every record the result file
holds up to the output's cursor, each exactly once, and so the whole truth of the log;
nothing was dropped. Zabbix kept receiving on time meanwhile (every window closed before
the receiver came back was in its history by then) and its history equals the truth."""
from e2e_run import assert_zabbix_has, canonical, run_outage


def test_a_required_output_loses_nothing_and_never_holds_zabbix_back(tmp_path, zabbix_host):
    outage = run_outage(tmp_path, zabbix_host(), "--multi",
                        '{type: line, name: required, url: "{url}", format: json}', "required")
    daemon, expected = outage.daemon, outage.expected
    received = outage.receiver.records()
    assert canonical(received) == canonical(daemon.taken("required"))
    assert expected.items() <= {(r["key"], r["clock"]): r["value"] for r in received}.items()
    totals = daemon.output_state("required")["totals"]
    assert totals["dropped"] == 0 and totals["sent"] == len(received)
    assert daemon.windows() == expected
    assert_zabbix_has(outage.zabbix, expected)
    log = daemon.text()
    assert "cannot send to output required" in log and "reachable again" in log

"""`plogd --multi` follows a live log with two json line outputs, one over TCP and one over
UDP, each to a listener in the test: what each listener received is exactly the records
the output took from the result file (every record once, byte for byte the same values,
plogd's own included), the output's totals count them, and the metrics among them are the
truth computed from the log."""
from e2e_run import Daemon, LineReceiver, LiveLog, canonical, truth, \
    write_config
from plogd.outputs.line.tests.receivers.common import wait_until


def test_json_over_tcp_and_udp_gives_the_result_files_records(tmp_path):
    with LineReceiver("tcp") as tcp, LineReceiver("udp") as udp:
        config = write_config(tmp_path, tmp_path / "access.log", f"""
  - {{type: line, name: json-tcp, url: "{tcp.url}", format: json}}
  - {{type: line, name: json-udp, url: "{udp.url}", format: json}}""")
        log = LiveLog(tmp_path / "access.log")
        daemon = Daemon(config, "--multi")
        try:
            log.start()
            daemon.wait_traffic(2)
            lines = log.stop()
            expected = truth(lines)
            daemon.wait_windows(expected)
            for receiver in (tcp, udp):
                wait_until(lambda receiver=receiver: expected.items() <= {
                    (r["key"], r["clock"]): r["value"] for r in receiver.records()}.items(),
                    f"{receiver.url} receiving the truth", 30)
        finally:
            daemon.stop()
        assert daemon.windows() == expected
        for name, receiver in (("json-tcp", tcp), ("json-udp", udp)):
            taken = daemon.taken(name)
            received = receiver.records()
            assert canonical(received) == canonical(taken), name
            assert daemon.output_state(name)["totals"]["sent"] == len(received)
            assert {r["key"] for r in received if r["key"].startswith("plogd.")}, \
                "plogd's own values go to every output"

"""`plogd --multi` follows a live log with a prometheus output, and a real Prometheus scrapes
its endpoint every second: once the traffic stops, Prometheus' query API gives, for each
metric, the values of its last window with lines, group by group, as the truth computed from
the log says; and the endpoint serves the same."""
import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from e2e_run import Daemon, LiveLog, truth, write_config
from receivers.prometheus import RealPrometheus

from plogd.outputs.line.tests.receivers.common import free_port

NAMES = {"e2e.requests": "e2e_requests", "e2e.status": "e2e_status", "e2e.bytes": "e2e_bytes",
         "e2e.rt.max": "e2e_rt_max"}


def last_windows(expected: dict) -> dict:
    """{(name, labels): value} of each metric's newest window in `expected`."""
    newest: dict[str, int] = {}
    for key, clock in expected:
        metric = key.partition("[")[0]
        newest[metric] = max(newest.get(metric, clock), clock)
    labels = (("host", socket.gethostname()), ("input", "web"))
    out = {}
    for (key, clock), value in expected.items():
        metric, _, group = key.partition("[")
        if clock == newest[metric]:
            status = (("status", group.rstrip("]")),) if group else ()
            out[NAMES[metric], labels + status] = float(value)
    return out


def as_truth(result: list[dict]) -> dict:
    """Prometheus' answer as {(name, ((label, value), ...)): value}, without the labels it
    adds (job, instance)."""
    return {(r["metric"]["__name__"],
             tuple(sorted((k, v) for k, v in r["metric"].items()
                          if k not in ("__name__", "job", "instance")))): float(r["value"][1])
            for r in result}


def test_a_real_prometheus_gives_the_last_windows(tmp_path):
    port = free_port()
    config = write_config(tmp_path, tmp_path / "access.log", f"""
  - {{type: prometheus, name: prom, listen: "127.0.0.1:{port}"}}""")
    log = LiveLog(tmp_path / "access.log")
    daemon = Daemon(config, "--multi")
    try:
        with RealPrometheus([f"127.0.0.1:{port}"], tmp_path / "prometheus") as prometheus:
            prometheus.wait_for_target_up()
            log.start()
            daemon.wait_traffic(2)
            lines = log.stop()
            expected = truth(lines)
            daemon.wait_windows(expected)
            want = last_windows(expected)
            assert len({name for name, _ in want}) == 4
            prometheus.wait_for('{job="plogd", __name__=~"e2e_.*"}',
                                lambda r: as_truth(r) == want, f"the last windows: {want}")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
                scraped = page.read().decode()
            assert {(s.name, tuple(sorted(s.labels.items()))): s.value
                    for family in text_string_to_metric_families(scraped)
                    for s in family.samples if s.name.startswith("e2e_")} == want
    finally:
        daemon.stop()
    assert daemon.windows() == expected

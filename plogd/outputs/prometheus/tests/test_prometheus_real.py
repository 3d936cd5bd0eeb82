"""Real receivers. A real Prometheus (tests/receivers/prometheus.py) scraping the output's
endpoint every second: its query API gives the values of the last window sent, series by
series, and a group absent from the newest window is gone from it at once (no timestamps:
staleness). A real node_exporter serving the output's textfile."""
import asyncio
import time

from prometheus_client.parser import text_string_to_metric_families
from receivers.node_exporter import RealNodeExporter
from receivers.prometheus import RealPrometheus

from plogd.outputs.base import OutputContext
from plogd.outputs.prometheus import PrometheusOutput

SELF_SERIES = "up|scrape_.*"            # what Prometheus adds for each target


def window(clock, requests, statuses, quantiles, lines):
    """The records of one closed window of input nginx on host web01, as in the spool."""
    base = {"host": "web01", "clock": clock, "ns": 0, "input": "nginx"}
    records = [{**base, "key": "nginx.requests", "metric": "nginx.requests", "value": requests},
               {**base, "key": "plogd.lines[nginx]", "metric": "plogd.lines", "value": lines,
                "input": "plogd", "group": {"input": "nginx"}}]
    records += [{**base, "key": f"nginx.status[{status}]", "metric": "nginx.status",
                 "group": {"status": status}, "value": n} for status, n in statuses.items()]
    records += [{**base, "key": f"nginx.request_time[p{q}]", "metric": "nginx.request_time",
                 "q": q, "value": v} for q, v in quantiles.items()]
    return records


def as_truth(result) -> dict:
    """Prometheus' answer as {(name, ((label, value), ...)): value}, without the labels
    Prometheus adds (job, instance)."""
    return {(r["metric"]["__name__"],
             tuple(sorted((k, v) for k, v in r["metric"].items()
                          if k not in ("__name__", "job", "instance")))): float(r["value"][1])
            for r in result}


def truth(requests, statuses, quantiles, lines) -> dict:
    nginx = (("host", "web01"), ("input", "nginx"))
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        ("nginx_requests", nginx): requests, ("plogd_lines", nginx): lines}
    out.update({("nginx_status", nginx + (("status", str(s)),)): n for s, n in statuses.items()})
    out.update({("nginx_request_time", nginx + (("quantile", q),)): v
                for q, v in quantiles.items()})
    return out


def test_a_real_prometheus_gives_the_last_windows(tmp_path):
    start = int(time.time()) // 60 * 60 - 600            # closed windows of the last 10 min
    first = dict(requests=100, statuses={200: 90, 500: 10}, lines=104)
    second = dict(requests=120, statuses={200: 120}, lines=121)     # no 500 any more
    context = OutputContext(host="web01", state_dir=str(tmp_path), interval=60)
    options = {**PrometheusOutput.OPTIONS, "listen": "127.0.0.1:0"}
    PrometheusOutput.check(options)
    out = PrometheusOutput("prometheus", options, context)
    everything = f'{{job="plogd", __name__!~"{SELF_SERIES}"}}'
    with asyncio.Runner() as loop:
        loop.run(out.open())
        try:
            host, port = out.address
            with RealPrometheus([f"{host}:{port}"], tmp_path / "prometheus") as prometheus:
                prometheus.wait_for_target_up()
                loop.run(out.send(window(start, quantiles={50: 0.05, 99.9: 1.5}, **first)))
                expected = truth(quantiles={"0.5": 0.05, "0.999": 1.5}, **first)
                prometheus.wait_for(everything, lambda r: as_truth(r) == expected,
                                    f"the first window: {expected}")

                loop.run(out.send(window(start + 60, quantiles={50: 0.04, 99.9: 1.2}, **second)))
                expected = truth(quantiles={"0.5": 0.04, "0.999": 1.2}, **second)
                prometheus.wait_for(everything, lambda r: as_truth(r) == expected,
                                    f"the second window, without status 500: {expected}")

                one = prometheus.query('nginx_request_time{host="web01", quantile="0.999"}')
                assert [float(r["value"][1]) for r in one] == [1.2]
                assert prometheus.query('nginx_status{status="500"}') == []
        finally:
            loop.run(out.close())


def test_a_real_node_exporter_serves_the_textfile(tmp_path):
    textfiles = tmp_path / "textfiles"
    textfiles.mkdir()
    clock = int(time.time()) // 60 * 60 - 120
    first = dict(requests=100, statuses={200: 90, 500: 10}, lines=104)
    options = {**PrometheusOutput.OPTIONS, "listen": None,
               "textfile": str(textfiles / "plogd.prom")}
    PrometheusOutput.check(options)
    out = PrometheusOutput("node-exporter", options,
                           OutputContext(host="web01", state_dir=str(tmp_path), interval=60))
    with asyncio.Runner() as loop:
        loop.run(out.open())
        loop.run(out.send(window(clock, quantiles={95: 0.2}, **first)))
        loop.run(out.close())
    with RealNodeExporter(textfiles, tmp_path) as exporter:
        scraped = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(exporter.scrape())
                   for s in family.samples}
    assert scraped[("node_textfile_scrape_error", ())] == 0      # the file was accepted
    ours = {k: v for k, v in scraped.items() if not k[0].startswith(("node_", "promhttp_", "go_",
                                                                      "process_"))}
    assert ours == truth(quantiles={"0.95": 0.2}, **first)

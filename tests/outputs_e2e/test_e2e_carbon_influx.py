"""`plogd --single` follows a live log with two line outputs into real metrics stores: the
graphite format over TCP into a carbon-cache, whose stored series (one point per window)
equal the truth computed from the log, under the paths the line output's README promises;
and the influx format over UDP into an InfluxDB 1.x, where a query gives the truth, each
value at its window's clock with its tags (host: the machine's name, there being no
`zabbix:` section to name another)."""
import socket

from e2e_run import Daemon, LiveLog, truth, write_config


def graphite_path(key: str) -> str:
    """e2e.status[200] -> web01.plogd.e2e.status.200 (prefix, metric, group value)."""
    metric, _, group = key.partition("[")
    return "web01.plogd." + metric + ("." + group.rstrip("]") if group else "")


def test_graphite_into_carbon_and_influx_into_influxdb_store_the_truth(tmp_path, carbon, influx):
    config = write_config(tmp_path, tmp_path / "access.log", f"""
  - {{type: line, name: carbon, url: "{carbon.url}", format: graphite, prefix: web01.plogd}}
  - {{type: line, name: influx, url: "{influx.udp_url}", format: influx}}""")
    log = LiveLog(tmp_path / "access.log")
    daemon = Daemon(config, "--single")
    try:
        log.start()
        daemon.wait_traffic(2)
        lines = log.stop()
        expected = truth(lines)
        daemon.wait_windows(expected)

        series: dict[str, dict[int, float]] = {}
        for (key, clock), value in expected.items():
            series.setdefault(graphite_path(key), {})[clock] = value
        for path, points in series.items():
            carbon.wait_series(path, points)
        assert [p for p in carbon.paths() if ".e2e." in p] == sorted(series)

        for measurement in ("e2e.requests", "e2e.status", "e2e.bytes", "e2e.rt.max"):
            want = sorted(
                ({"time": clock, "value": value, "host": socket.gethostname(), "input": "web"}
                 | ({"status": key[len("e2e.status["):-1]} if key.startswith("e2e.status")
                    else {})
                 for (key, clock), value in expected.items()
                 if key.partition("[")[0] == measurement),
                key=lambda row: (row["time"], row.get("status", "")))
            rows = influx.wait_rows(f'SELECT * FROM "{measurement}" GROUP BY *', want)
            assert sorted(rows, key=lambda row: (row["time"], row.get("status", ""))) == want
    finally:
        daemon.stop()
    assert daemon.windows() == expected
    for name in ("carbon", "influx"):
        state = daemon.output_state(name)
        assert state["totals"]["refused"] == 0 and state["up"], (name, state)

"""The influx format over UDP into a real InfluxDB 1.x (precision "s"): a query gives the
values sent, at their windows' clocks, with the tags (escaped on the way, intact in the
database) and a float field."""
import asyncio

from .test_line_transport import output, windows

AWKWARD = "/api/v1 x,y=z"      # a space, a comma and an equals sign: all escaped on the wire


def test_influx_over_udp_into_influxdb_gives_the_values_sent(influx):
    sent = windows(5, per_window=2)
    sent = [{**r, "group": {"uri": AWKWARD if r["value"] % 10 else "other"}}
            if "group" in r else r for r in sent]

    async def send():
        out = output(influx.udp_url, format="influx")
        await out.open()
        assert await out.send(sent) == []
        await out.close()
    asyncio.run(send())

    by = [r for r in sent if "group" in r]
    rows = influx.wait_rows('SELECT * FROM "nginx.status" GROUP BY *', by)
    assert sorted(rows, key=lambda row: (row["time"], row["uri"])) == sorted(
        ({"time": r["clock"], "value": r["value"], "host": "web01", "input": "nginx",
          "uri": r["group"]["uri"]} for r in by), key=lambda row: (row["time"], row["uri"]))

    quantiles = [r for r in sent if "q" in r]
    rows = influx.wait_rows('SELECT * FROM "nginx.request_time" GROUP BY *', quantiles)
    assert sorted(rows, key=lambda row: row["time"]) == [
        {"time": r["clock"], "value": r["value"], "host": "web01", "input": "nginx",
         "quantile": "99.9"} for r in quantiles]

    fields = influx.query('SHOW FIELD KEYS FROM "nginx.status"')["series"][0]["values"]
    assert fields == [["value", "float"]]

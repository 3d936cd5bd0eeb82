"""The prometheus output as the runner drives it (check, open, send, close): its options, the
/metrics endpoint scraped over HTTP on 127.0.0.1, and the textfile for node_exporter."""
import asyncio
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from plogd.outputs.base import OutputContext, OutputDown
from plogd.outputs.prometheus import PrometheusOutput

CLOCK = int(time.time()) // 60 * 60 - 120       # a recent window's start


def record(metric, value, clock=CLOCK, group=None, q=None):
    r = {"host": "web01", "key": metric, "clock": clock, "ns": 0, "value": value,
         "input": "nginx", "metric": metric}
    if group is not None:
        r["group"] = group
    if q is not None:
        r["q"] = q
    return r


def options(**given):
    return {**PrometheusOutput.OPTIONS, **given}


def output(tmp_path, **given) -> PrometheusOutput:
    opts = options(**given)
    PrometheusOutput.check(opts)
    return PrometheusOutput("prometheus", opts,
                            OutputContext(host="web01", state_dir=str(tmp_path), interval=60))


def scrape(address) -> dict:
    host, port = address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:
        return parse(response.read().decode())


def parse(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# --- options -----------------------------------------------------------------------------

@pytest.mark.parametrize("given", [
    {}, {"listen": "0.0.0.0:9361"}, {"listen": "[::1]:9361"}, {"listen": "localhost:9100"},
    {"prefix": "plogd"}, {"prefix": "plogd:web"}, {"expire": 300}, {"expire": 0.5},
])
def test_good_options_are_accepted(given):
    PrometheusOutput.check(options(**given))


@pytest.mark.parametrize("given, message", [
    ({"listen": "9361"}, "listen: '9361' is not an address to serve /metrics on: use HOST:PORT"),
    ({"listen": "127.0.0.1:http"}, "use HOST:PORT (127.0.0.1:9361, 0.0.0.0:9361, [::1]:9361)"),
    ({"listen": "127.0.0.1:70000"}, "listen: '127.0.0.1:70000' is not an address"),
    ({"listen": 9361}, "listen: 9361 is not an address"),
    ({"listen": None}, "listen: null needs a textfile: (a .prom file in node_exporter's"),
    ({"textfile": "/tmp/plogd.txt"}, "textfile: '/tmp/plogd.txt' is not a .prom file path"),
    ({"textfile": "plogd.prom"}, "textfile: 'plogd.prom' is not an absolute path, e.g. /var/lib"),
    ({"textfile": "/nonexistent-dir/plogd.prom"},
     "textfile: the directory /nonexistent-dir does not exist: give a .prom file in"),
    ({"prefix": "9lives"}, "prefix: '9lives' is not a Prometheus name prefix"),
    ({"prefix": "plogd.web"}, "prefix: 'plogd.web' is not a Prometheus name prefix"),
    ({"expire": 0}, "expire: 0 is not a number of seconds > 0"),
    ({"expire": "5m"}, "expire: '5m' is not a number of seconds > 0"),
])
def test_bad_options_are_refused_saying_what_is_accepted(given, message):
    with pytest.raises(ValueError) as error:
        PrometheusOutput.check(options(**given))
    assert message in str(error.value)


def test_a_textfile_directory_plogd_cannot_write_is_refused(tmp_path, monkeypatch):
    # os.access as plogd's user would answer it (the tests run as root, who may write anywhere)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match=f"textfile: the directory {tmp_path} is not writable"):
        PrometheusOutput.check(options(textfile=str(tmp_path / "plogd.prom")))


# --- the endpoint ------------------------------------------------------------------------

def test_the_endpoint_serves_the_last_window_over_http(tmp_path):
    async def run():
        out = output(tmp_path, listen="127.0.0.1:0", prefix="plogd")
        await out.open()
        try:
            assert scrape(out.address) == {}
            assert await out.send([record("nginx.requests", 10),
                                   record("nginx.status", 4, group={"status": 500})]) == []
            assert await out.send([record("nginx.requests", 12, CLOCK + 60),
                                   record("nginx.request_time", 0.3, CLOCK + 60, q=95)]) == []
            return scrape(out.address), out.stats()
        finally:
            await out.close()
    scraped, stats = asyncio.run(run())
    host = (("host", "web01"), ("input", "nginx"))
    assert scraped == {("plogd_nginx_requests", host): 12,
                       ("plogd_nginx_status", host + (("status", "500"),)): 4,
                       ("plogd_nginx_request_time", host + (("quantile", "0.95"),)): 0.3}
    assert stats == {"series": 3, "older": 0}


def test_close_stops_serving(tmp_path):
    async def run():
        out = output(tmp_path, listen="127.0.0.1:0")
        await out.open()
        await out.close()
        return out.address
    host, port = asyncio.run(run())
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, port), timeout=5).close()


def test_a_port_in_use_is_an_output_down_that_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = output(tmp_path, listen=f"127.0.0.1:{port}")
        with pytest.raises(OutputDown) as error:
            asyncio.run(out.open())
        asyncio.run(out.close())                # called after a failed open too
    assert str(error.value) == (
        f"listen: cannot serve /metrics on 127.0.0.1:{port}: Address already in use; is "
        "another plogd or exporter on that port? Choose a free HOST:PORT")


# --- the textfile ------------------------------------------------------------------------

def test_textfile_only_serves_nothing_and_writes_the_file(tmp_path):
    path = tmp_path / "plogd.prom"

    async def run():
        out = output(tmp_path, listen=None, textfile=str(path))
        await out.open()
        await out.send([record("nginx.requests", 10)])
        await out.send([record("nginx.requests", 11, CLOCK + 60)])
        await out.close()
        return out.address
    assert asyncio.run(run()) is None
    assert parse(path.read_text()) == {
        ("nginx_requests", (("host", "web01"), ("input", "nginx"))): 11}
    assert os.listdir(tmp_path) == ["plogd.prom"]           # no temporary file left


def test_the_textfile_is_replaced_atomically(tmp_path):
    """A reader (node_exporter) reading while plogd rewrites it always finds a whole file: all
    series of one window, never a part of one."""
    path = tmp_path / "plogd.prom"
    groups = 1000                                           # a file of ~90 KB
    windows = 30
    seen: list[tuple[int, set]] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            if path.exists():
                samples = [line.rpartition(" ")[2] for line in path.read_text().splitlines()
                           if line.startswith("nginx_hits{")]
                seen.append((len(samples), set(samples)))

    async def run():
        out = output(tmp_path, listen=None, textfile=str(path))
        await out.open()
        for w in range(windows):            # every series of window w has the value w
            await out.send([record("nginx.hits", w, CLOCK + 60 * w, group={"uri": f"/{i}"})
                            for i in range(groups)])
        await out.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        asyncio.run(run())
    finally:
        stop.set()
        thread.join()
    assert len(seen) > 10, "the reader should have read the file while it was rewritten"
    for count, values in seen:          # one window per read, and all of its series
        assert count == groups and len(values) == 1
    assert parse(path.read_text()) == {
        ("nginx_hits", (("host", "web01"), ("input", "nginx"), ("uri", f"/{i}"))): windows - 1
        for i in range(groups)}


def test_a_textfile_that_cannot_be_written_is_an_output_down(tmp_path):
    directory = tmp_path / "textfiles"
    directory.mkdir()
    out = output(tmp_path, listen=None, textfile=str(directory / "plogd.prom"))
    directory.rmdir()                           # removed after the config was checked
    with pytest.raises(OutputDown, match=f"textfile: cannot write {directory}/plogd.prom: "
                                         "No such file or directory"):
        asyncio.run(out.send([record("nginx.requests", 1)]))


def test_the_sample_config_is_accepted():
    sample = yaml.safe_load((Path(__file__).parent.parent / "sample.yaml").read_text())
    [entry] = sample["outputs"]
    assert entry.pop("type") == PrometheusOutput.type
    assert set(entry) <= set(PrometheusOutput.OPTIONS)
    PrometheusOutput.check(options(**entry))


def test_a_refused_record_is_returned_by_send(tmp_path):
    bad = {"host": "web01", "key": "nginx.requests", "clock": CLOCK, "value": 1}  # no metric
    assert asyncio.run(output(tmp_path).send([bad, record("nginx.requests", 1)])) == [bad]

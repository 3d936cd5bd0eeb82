"""LineOutput over real sockets to listeners in the test: json over TCP, UDP and a unix
socket arrives as sent; a TCP receiver that is down gives OutputDown and gets the batch once
it is back; a receiver that stops reading gives OutputDown within the timeout."""
import asyncio
import json
import time

import pytest

from plogd.outputs.base import OutputContext, OutputDown
from plogd.outputs.line import LineOutput

from .receivers.common import free_port

CONTEXT = OutputContext(host="web01", state_dir="/nonexistent", interval=60)


def windows(count: int, per_window: int = 3) -> list[dict]:
    """Records of `count` recent windows (the last one closed a minute ago)."""
    last = int(time.time()) // 60 * 60 - 60
    out = []
    for w in range(count):
        clock = last - 60 * (count - 1 - w)
        for i in range(per_window):
            out.append({"host": "web01", "key": f"nginx.status[{200 + i}]", "clock": clock,
                        "ns": 0, "value": w * 10 + i, "input": "nginx",
                        "metric": "nginx.status", "group": {"status": 200 + i}})
        out.append({"host": "web01", "key": "nginx.request_time.p[99.9]", "clock": clock,
                    "ns": 0, "value": 0.125 * (w + 1), "input": "nginx",
                    "metric": "nginx.request_time", "q": 99.9})
    return out


def output(url: str, **options) -> LineOutput:
    options = {**LineOutput.OPTIONS, "url": url, **options}
    LineOutput.check(options)
    return LineOutput("line", options, CONTEXT)


class StreamListener:
    """A TCP (port) or unix (path) listener in the test's event loop keeping what it reads."""

    def __init__(self, port: int = 0, path: str = ""):
        self.port, self.path = port, path
        self.data = bytearray()
        self.received = asyncio.Event()
        self.connections: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> "StreamListener":
        if self.path:
            self.server = await asyncio.start_unix_server(self._serve, self.path)
        else:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def _serve(self, reader, writer):
        self.connections.append(writer)
        while chunk := await reader.read(65536):
            self.data += chunk
            self.received.set()
        writer.close()

    async def stop(self) -> None:
        """Stops listening and closes the connections it has (asyncio's close keeps them)."""
        assert self.server is not None
        self.server.close()
        for writer in self.connections:
            writer.close()
            await writer.wait_closed()
        self.connections.clear()
        await self.server.wait_closed()

    async def lines(self, count: int) -> list[bytes]:
        """Waits for `count` complete lines, and returns all it has."""
        async def enough():
            while self.data.count(b"\n") < count:
                self.received.clear()
                await self.received.wait()
        await asyncio.wait_for(enough(), 10)
        return bytes(self.data).splitlines()


class DatagramListener(asyncio.DatagramProtocol):
    def __init__(self):
        self.datagrams: list[bytes] = []
        self.received = asyncio.Event()

    def datagram_received(self, data, addr):
        self.datagrams.append(data)
        self.received.set()

    async def lines(self, count: int) -> list[bytes]:
        async def enough():
            while b"".join(self.datagrams).count(b"\n") < count:
                self.received.clear()
                await self.received.wait()
        await asyncio.wait_for(enough(), 10)
        return b"".join(self.datagrams).splitlines()


async def udp_listener() -> tuple[asyncio.DatagramTransport, DatagramListener]:
    return await asyncio.get_running_loop().create_datagram_endpoint(
        DatagramListener, local_addr=("127.0.0.1", 0))


def test_json_over_tcp_arrives_as_sent():
    async def run():
        listener = await StreamListener(free_port()).start()
        out = output(f"tcp://127.0.0.1:{listener.port}")
        await out.open()
        records = windows(5)
        assert await out.send(records[:8]) == []
        assert await out.send(records[8:]) == []
        lines = await listener.lines(len(records))
        await out.close()
        await listener.stop()
        return records, lines
    records, lines = asyncio.run(run())
    assert [json.loads(line) for line in lines] == records


def test_json_over_unix_socket_arrives_as_sent(tmp_path):
    async def run():
        path = str(tmp_path / "receiver.sock")
        listener = await StreamListener(path=path).start()
        out = output(f"unix://{path}")
        await out.open()
        records = windows(3)
        assert await out.send(records) == []
        lines = await listener.lines(len(records))
        await out.close()
        await listener.stop()
        return records, lines
    records, lines = asyncio.run(run())
    assert [json.loads(line) for line in lines] == records


def test_json_over_udp_arrives_as_sent_in_whole_line_datagrams():
    async def run():
        transport, listener = await udp_listener()
        port = transport.get_extra_info("sockname")[1]
        out = output(f"udp://127.0.0.1:{port}", max_datagram=600)
        await out.open()
        records = windows(20)
        assert await out.send(records) == []
        lines = await listener.lines(len(records))
        await out.close()
        transport.close()
        return records, lines, listener.datagrams
    records, lines, datagrams = asyncio.run(run())
    assert [json.loads(line) for line in lines] == records
    assert len(datagrams) > 1
    assert all(len(d) <= 600 and d.endswith(b"\n") for d in datagrams)


def test_statsd_over_udp():
    async def run():
        transport, listener = await udp_listener()
        port = transport.get_extra_info("sockname")[1]
        out = output(f"udp://127.0.0.1:{port}", format="statsd", prefix="web01.plogd")
        await out.open()
        records = windows(1)
        assert await out.send(records) == []
        lines = await listener.lines(len(records))
        await out.close()
        transport.close()
        return lines
    assert asyncio.run(run()) == [b"web01.plogd.nginx.status.200:0|g",
                                  b"web01.plogd.nginx.status.201:1|g",
                                  b"web01.plogd.nginx.status.202:2|g",
                                  b"web01.plogd.nginx.request_time.p99_9:0.125|g"]


def test_tcp_receiver_down_gives_output_down_and_back_gets_the_batch():
    async def run():
        port = free_port()
        out = output(f"tcp://127.0.0.1:{port}", format="graphite")
        batches = [windows(1)] * 4
        with pytest.raises(OutputDown, match=f"tcp://127.0.0.1:{port}: cannot connect"):
            await out.open()                               # nobody listens yet
        with pytest.raises(OutputDown):
            await out.send(batches[0])
        first = await StreamListener(port).start()
        assert await out.send(batches[0]) == []            # connects on the next send
        await first.lines(4)
        await first.stop()                                 # the receiver goes away
        with pytest.raises(OutputDown):
            await out.send(batches[1])
        with pytest.raises(OutputDown):
            await out.send(batches[1])
        second = await StreamListener(port).start()        # and comes back
        assert await out.send(batches[1]) == []
        assert await out.send(batches[2]) == []
        lines = await second.lines(8)
        await out.close()
        await second.stop()
        return first.data, lines
    first, second = asyncio.run(run())
    assert first.count(b"\n") == 4
    assert len(second) == 8 and second[:4] == first.splitlines()


def test_a_receiver_that_stops_reading_gives_output_down_within_the_timeout():
    async def run():
        stalled = asyncio.Event()

        async def never_read(reader, writer):
            await stalled.wait()
            writer.close()
        server = await asyncio.start_server(never_read, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        out = output(f"tcp://127.0.0.1:{port}", timeout=0.5)
        await out.open()
        big = windows(1) * 20000                           # megabytes: more than the buffers
        started = time.monotonic()
        with pytest.raises(OutputDown, match="no answer \\(timeout\\)"):
            await out.send(big)
        elapsed = time.monotonic() - started
        stalled.set()
        await out.close()
        server.close()
        await server.wait_closed()
        return elapsed
    assert 0.5 <= asyncio.run(run()) < 5       # the timeout, and the batch's rendering


def test_records_a_format_cannot_carry_are_refused_and_the_rest_sent():
    async def run():
        listener = await StreamListener(free_port()).start()
        out = output(f"tcp://127.0.0.1:{listener.port}", format="influx")
        records = windows(1)
        bad = [{**records[0], "value": float("nan")}, {"host": "web01", "key": "old.key",
                                                       "clock": records[0]["clock"],
                                                       "ns": 0, "value": 1}]
        refused = await out.send(bad + records)
        lines = await listener.lines(len(records))
        await out.close()
        await listener.stop()
        return bad, refused, lines
    bad, refused, lines = asyncio.run(run())
    assert refused == bad
    assert len(lines) == 4 and all(line.startswith(b"nginx.") for line in lines)

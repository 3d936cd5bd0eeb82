"""The syslog input: RFC 3164 and RFC 5424 headers stripped, TCP framing, malformed messages
counted, on real UDP, TCP and unix sockets; and plogd --single and --multi counting what a
server sends over UDP exactly as a replay of the same lines."""
import socket
import time

import pytest

from daemon import start, stop, truth, wait_for, wait_log
from plogd.config import ConfigError, from_data
from plogd.syslog import SyslogListener, _frames, strip_header
from plogd.traffic import write_file

LINE = b'1.2.3.4 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl" 0.001 -'


@pytest.mark.parametrize("message,msg", [
    (b"<190>Mar  1 10:00:00 web01 nginx: " + LINE, LINE),                   # nginx's
    (b"<190>Mar 11 10:00:00 nginx[123]: " + LINE + b"\n", LINE),            # no host, a pid
    (b"<165>1 2024-03-01T10:00:00.003Z web01 nginx 123 ID47 - " + LINE, LINE),
    (b'<165>1 2024-03-01T10:00:00Z web01 app - - [ex@32473 a="1" b="\\]"] \xef\xbb\xbf'
     + LINE, LINE),                                                       # SD and a BOM
    (b"<165>1 - - - - - -", b""),
    (LINE, None), (b"<190>garbage", None), (b"", None),
])
def test_strip_header(message, msg):
    assert strip_header(message) == msg


def test_tcp_frames_by_octet_count_or_newline():
    buffer = bytearray(b"5 <1>ab<2>cd\n<3>e")
    assert _frames(buffer, closed=False) == [b"<1>ab", b"<2>cd\n"]
    assert buffer == b"<3>e"
    assert _frames(buffer, closed=True) == [b"<3>e"] and not buffer


def _free_port(kind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _receive(listener, expected: int, timeout: float = 10) -> list[bytes]:
    lines, deadline = [], time.monotonic() + timeout
    while listener.received < expected and time.monotonic() < deadline:
        lines += [line for batch in listener.poll() for line in batch.data.splitlines()]
        time.sleep(0.01)
    return lines


MESSAGES = [b"<190>Mar  1 10:00:00 web01 nginx: " + LINE,
            b"<165>1 2024-03-01T10:00:00Z web01 nginx - - - " + LINE,
            b"no header at all"]


@pytest.mark.parametrize("kind", ["udp", "tcp", "unix"])
def test_a_listener_receives_strips_and_counts_malformed(tmp_path, kind):
    if kind == "unix":
        address, target = f"unix://{tmp_path / 'log.sock'}", str(tmp_path / "log.sock")
    else:
        port = _free_port(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        address, target = f"{kind}://127.0.0.1:{port}", ("127.0.0.1", port)
    listener = SyslogListener("web", address, 65536)
    assert listener.poll() == []              # binds
    try:
        if kind == "tcp":
            with socket.create_connection(target) as conn:
                conn.sendall(b"".join(b"%d %s" % (len(m), m) for m in MESSAGES[:2])
                             + MESSAGES[2] + b"\n")
        else:
            family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sender:
                for message in MESSAGES:
                    sender.sendto(message, target)
        assert _receive(listener, len(MESSAGES)) == [LINE, LINE]
        assert listener.malformed == 1
    finally:
        listener.close()


def test_listen_mistakes_are_named():
    base = {"inputs": [{"name": "s", "format": "nginx_timed", "metrics": [
        {"key": "n", "type": "count"}]}]}
    for listen, expected in [("http://x:1", "inputs[0].listen: found 'http://x:1'; expected "
                              "udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"),
                             ("udp://127.0.0.1", "expected udp://HOST:PORT")]:
        base["inputs"][0]["listen"] = listen
        with pytest.raises(ConfigError) as err:
            from_data("c.yaml", base)
        assert expected in str(err.value)
    base["inputs"][0].update(listen="udp://127.0.0.1:5514", path="/x")
    with pytest.raises(ConfigError, match="found it with path:"):
        from_data("c.yaml", base)


@pytest.mark.parametrize("mode", ["--single", "--multi"])
def test_plogd_counts_what_a_server_sends_over_udp_as_a_replay_does(tmp_path, mode):
    log = tmp_path / "access.log"
    port = _free_port(socket.SOCK_DGRAM)
    config = tmp_path / "plogd.yaml"
    config.write_text(f"""
interval: 1
state_dir: {tmp_path / 'state'}
inputs:
  - name: web
    listen: udp://127.0.0.1:{port}
    format: nginx_timed
    lateness: 5
    metrics:
      - {{key: requests, type: count}}
      - {{key: "status[{{status}}]", type: count, by: status}}
      - {{key: bytes, type: sum, field: body_bytes_sent}}
""")
    replay_config = tmp_path / "replay.yaml"
    replay_config.write_text(config.read_text().replace(f"listen: udp://127.0.0.1:{port}",
                                                        f"path: {log}"))
    proc = start(config, mode, *(["--workers", "2"] if mode == "--multi" else []))
    try:
        wait_log(config, lambda text: "listening for syslog messages" in text)
        # lines stamped over the next seconds, sent as a server would send them then
        write_file(log, 1000, seed=3, start=time.time() + 1, rate=400)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for number, line in enumerate(log.read_bytes().splitlines()):
                sender.sendto(b"<190>Mar  1 10:00:00 web01 nginx: " + line, ("127.0.0.1", port))
                if number % 50 == 49:       # a server's pace (the lines span 2.5 s)
                    time.sleep(0.05)
        expected = truth(replay_config, log)
        assert wait_for(tmp_path / "state" / "results.jsonl", expected) == expected
    finally:
        assert stop(proc) == 0

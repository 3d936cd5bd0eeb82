"""A Zabbix trapper that misbehaves on purpose, on 127.0.0.1 (the only mock of Zabbix the
tests allow: the real server never sends these replies).

    server = FakeTrapper()            # listens at once; server.port
    server.mode = "null"              # the next exchanges answer JSON null
    server.mode = "ok"                # a well-behaved trapper: stores and acknowledges
    server.stored                     # {(host, key, clock, ns): value} accepted in "ok"
    server.received                   # {(host, key, clock, ns): [every value sent for it]}
    server.close()

Modes: ok, garbage (not the Zabbix protocol), not_json, null, wrong_shape (a JSON list),
bad_info (an `info` nobody can parse), trickle (a header claiming 4 GB, then 1 byte/s),
huge (a 200 MB reply), zlib_bomb (306 KB inflating to 300 MB), slow (the right answer
after `slow_seconds`).
"""
import json
import socket
import struct
import threading
import time
import zlib

MODES = ("ok", "garbage", "not_json", "null", "wrong_shape", "bad_info", "trickle", "huge",
         "zlib_bomb", "slow")


def packet(body: bytes, flags: int = 0x01, size: int | None = None) -> bytes:
    return struct.pack("<4sBII", b"ZBXD", flags, len(body) if size is None else size, 0) + body


def _bomb() -> bytes:
    inflate = zlib.compressobj(9)
    zeros = b"\0" * (1 << 20)
    return b"".join(inflate.compress(zeros) for _ in range(300)) + inflate.flush()


class FakeTrapper:
    def __init__(self, slow_seconds: float = 30):
        self.mode = "ok"
        self.slow_seconds = slow_seconds
        self.stored: dict[tuple, object] = {}
        self.received: dict[tuple, list] = {}
        self.exchanges = 0
        self._bomb = None
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closing.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _request(self, conn) -> list[dict]:
        data = b""
        while len(data) < 13:
            data += conn.recv(65536) or b"!" * 13
        size = struct.unpack("<I", data[5:9])[0]
        while len(data) < 13 + size:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data[13:13 + size])["data"]

    def _serve(self, conn) -> None:
        try:
            values = self._request(conn)
            self.exchanges += 1
            mode = self.mode
            if mode == "ok":
                for v in values:
                    ident = (v["host"], v["key"], v["clock"], v["ns"])
                    self.stored.setdefault(ident, v["value"])
                    self.received.setdefault(ident, []).append(v["value"])
                info = f"processed: {len(values)}; failed: 0; total: {len(values)}; seconds spent: 0.000100"
                conn.sendall(packet(json.dumps({"response": "success", "info": info}).encode()))
            elif mode == "garbage":
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            elif mode == "not_json":
                conn.sendall(packet(b"{processed: 3"))
            elif mode == "null":
                conn.sendall(packet(b"null"))
            elif mode == "wrong_shape":
                conn.sendall(packet(b'[{"response": "success"}]'))
            elif mode == "bad_info":
                conn.sendall(packet(b'{"response": "success", "info": "all good, trust me"}'))
            elif mode == "trickle":
                conn.sendall(packet(b"", size=0xFFFFFFFF))
                while not self._closing.wait(1):
                    conn.sendall(b"x")
            elif mode == "huge":
                conn.sendall(packet(b"", size=200 << 20))
                block = b" " * (1 << 20)
                for _ in range(200):
                    conn.sendall(block)
            elif mode == "zlib_bomb":
                self._bomb = self._bomb or _bomb()
                conn.sendall(packet(self._bomb, flags=0x03))
            elif mode == "slow":
                time.sleep(self.slow_seconds)
                info = f"processed: 0; failed: {len(values)}; total: {len(values)}; seconds spent: 0.1"
                conn.sendall(packet(json.dumps({"response": "success", "info": info}).encode()))
        except OSError:
            pass           # the sender gave up on us: what the hostile modes are for
        finally:
            conn.close()

"""A real node_exporter (Debian's `prometheus-node-exporter`, 1.5 on bookworm; installed by
tests/receivers/install-prometheus.sh) with only its textfile collector, reading a directory
of the test's own.

    with RealNodeExporter(tmp_path / "textfiles", tmp_path) as exporter:
        text = exporter.scrape()        # its /metrics, as text

It fails, never skips, when the binary is missing or it does not answer.
"""
from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from receivers.prometheus import INSTALL, free_port


class RealNodeExporter:
    def __init__(self, textfile_dir: Path, workdir: Path, timeout: float = 30):
        self.textfile_dir = Path(textfile_dir)
        self.log = Path(workdir) / "node_exporter.log"
        self.timeout = timeout
        self.url = ""
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RealNodeExporter:
        binary = shutil.which("prometheus-node-exporter")
        assert binary, f"no prometheus-node-exporter binary: install it with `{INSTALL}`"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/metrics"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--collector.disable-defaults", "--collector.textfile",
                 f"--collector.textfile.directory={self.textfile_dir}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.timeout
        while True:                     # polling: it offers no event to wait on
            try:
                self.scrape()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise AssertionError(f"node_exporter did not answer on {self.url}; log:\n"
                                         f"{self.log.read_text(errors='replace')[-3000:]}") \
                        from None
                time.sleep(0.2)

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def scrape(self) -> str:
        with urllib.request.urlopen(self.url, timeout=10) as response:
            return response.read().decode()

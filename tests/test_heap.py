"""Batch buffers stay in the heap (plogd.heap): reading a file batch by batch does not
page-fault every batch's buffers in afresh, as it does with glibc's default thresholds."""
import subprocess
import sys

PROGRAM = """
import resource, sys
import plogd.heap
from plogd.stages.read import read_file
plogd.heap._done = sys.argv[2] == "default"       # as if already done: thresholds untouched
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for batch in read_file("in", sys.argv[1], 65536):
    pass
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(path, mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(path), mode], check=True,
                         capture_output=True, text=True).stdout
    return int(out)


def test_batch_buffers_are_reused_not_faulted_in_again(tmp_path):
    path = tmp_path / "access.log"
    path.write_bytes(b"x" * 99 + b"\n" * 1 + (b"y" * 199 + b"\n") * 100_000)    # 20 MB
    default, kept = faults(path, "default"), faults(path, "keep")
    assert default > 20 * 128            # half a batch (1 MiB: 256 pages) fresh per batch
    assert kept < default / 4

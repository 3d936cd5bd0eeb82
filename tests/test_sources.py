"""Logs as replay, parse and detect take them: standard input and pipes that cannot seek,
compressed files (by their first bytes), rotation sets in any order — each gives the same
windows as the plain file; and a path that cannot be read is one line and exit 2."""
import bz2
import gzip
import lzma
import os
import subprocess
import sys

import pytest
import zstandard

from helpers import DATA, ROOT, plogd, read_records
from plogd.sources import open_log, replay_order

NASA = DATA / "logs" / "nasa-aug95-repaired" / "NASA_access_log_Aug95.repaired"
COMPRESS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
            "zst": lambda data: zstandard.ZstdCompressor().compress(data)}


def nasa_lines() -> list[bytes]:
    return NASA.read_bytes().splitlines(keepends=True)


def test_replay_order_reads_a_rotation_set_oldest_first_and_each_file_once(tmp_path):
    names = ["access.log.1", "access.log", "access.log.10.gz", "access.log.3.gz",
             "access.log.2.zst", "error.log-20240102.gz", "error.log", "error.log-20240101.gz"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    given = [str(tmp_path / n) for n in names] + [str(tmp_path / "access.log.1")]
    order = [os.path.basename(p) for p in replay_order(given)]
    assert order == ["access.log.10.gz", "access.log.3.gz", "access.log.2.zst", "access.log.1",
                     "access.log", "error.log-20240101.gz", "error.log-20240102.gz",
                     "error.log"]


@pytest.mark.parametrize("ext", COMPRESS)
def test_open_log_decompresses_by_the_first_bytes_not_the_name(tmp_path, ext):
    data = b"".join(nasa_lines()[:500])
    # two frames/members/streams, as `cat a.gz b.gz` and appending compressors make
    path = tmp_path / "access.log.1"
    path.write_bytes(COMPRESS[ext](data[:1000]) + COMPRESS[ext](data[1000:]))
    with open_log(str(path)) as source:
        assert source.stream.read() == data
        assert source.compression is not None


def test_stdin_compressed_files_and_a_shuffled_rotation_set_give_the_plain_windows(tmp_path):
    lines = nasa_lines()
    plain = read_records(plogd("replay", "--format", "apache_common", str(NASA)).stdout)
    # the set as logrotate leaves it: the oldest lines in the highest number
    quarter = len(lines) // 4
    chunks = [lines[:quarter], lines[quarter:2 * quarter], lines[2 * quarter:3 * quarter],
              lines[3 * quarter:]]
    written = []
    for number, chunk, ext in zip((4, 3, 2, 1), chunks, ("xz", "bz2", "zst", "gz")):
        path = tmp_path / f"access.log.{number}.{ext}"
        path.write_bytes(COMPRESS[ext](b"".join(chunk)))
        written.append(path)
    live = tmp_path / "access.log"
    live.write_bytes(b"")
    written.append(live)
    shuffled = [str(written[i]) for i in (2, 4, 0, 3, 1)]
    from_set = read_records(plogd("replay", "--format", "apache_common", *shuffled).stdout)
    assert from_set == plain
    piped = plogd("replay", "--format", "apache_common", "-",
                  input=gzip.compress(NASA.read_bytes()))
    assert read_records(piped.stdout) == plain
    assert b"1881 lines, 1 unmatched" in piped.stderr


def test_parse_reads_a_pipe_that_cannot_seek():
    with subprocess.Popen(["cat", str(NASA)], stdout=subprocess.PIPE) as cat:
        result = plogd("parse", "--format", "apache_common", stdin=cat.stdout)
    assert len(result.stdout.splitlines()) == 1880
    assert b"1881 lines, 1 unmatched" in result.stderr


def test_parse_exits_non_zero_when_nothing_matched():
    result = plogd("parse", "--format", "nginx_main", str(NASA), check=False)
    assert result.returncode == 1
    assert b"1881 unmatched" in result.stderr and result.stdout == b""


def _unreadable(tmp_path):
    path = tmp_path / "secret.log"
    path.write_bytes(NASA.read_bytes()[:1000])
    path.chmod(0)
    return path


@pytest.mark.parametrize("command", [["replay", "--format", "apache_common"],
                                     ["parse", "--format", "apache_common"], ["detect"],
                                     ["check", "-c"], ["--once", "-c"]])
@pytest.mark.parametrize("what", ["missing", "directory", "unreadable"])
def test_a_path_that_cannot_be_read_is_one_line_and_exit_2(tmp_path, command, what):
    path = {"missing": lambda: tmp_path / "nope.log", "directory": lambda: tmp_path,
            "unreadable": lambda: _unreadable(tmp_path)}[what]()
    run = [sys.executable, "-m", "plogd", *command, str(path)]
    if what == "unreadable" and os.geteuid() == 0:
        # root reads any file: without the capabilities that let it (as a service user)
        run = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *run]
    result = subprocess.run(run, capture_output=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("plogd: ") and str(path) in err, err

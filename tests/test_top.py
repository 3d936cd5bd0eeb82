"""`plogd top`'s frame, built by pure functions from what the state directory holds: it fits
an 80x24 terminal, shows per input the lines/s, lag, counts, status mix, percentiles and
their sparkline, and the sender's state."""
import json

from plogd import config as config_module
from plogd.livestate import Snapshot, rates, recent_windows, status_line
from plogd.top import ASCII_BARS, BARS, render, sparkline, status_mix

CONFIG = """
interval: 60
state_dir: {state}
zabbix: {{server: zbx.example, port: 10051, host: web01}}
inputs:
  - name: {name}
    path: /var/log/{name}.log
    format: nginx_timed
    metrics:
      - {{key: "{name}.requests", type: count}}
      - {{key: "{name}.status[{{status}}]", type: count, by: status}}
      - {{key: "{name}.rt[p{{q}}]", type: percentile, field: request_time, q: [50, 99]}}
"""


def make_config(tmp_path, names=("web",)):
    text = CONFIG.format(state=tmp_path, name=names[0])
    for name in names[1:]:
        text += CONFIG.format(state=tmp_path, name=name).split("inputs:\n")[1]
    path = tmp_path / "plogd.yaml"
    path.write_text(text)
    return config_module.load(str(path))


def write_results(tmp_path, name="web", windows=5):
    records = []
    for i in range(windows):
        clock = 1_800_000_000 + 60 * i
        own = {"input": name, "clock": clock}
        records += [dict(r, **own) for r in [{"key": f"{name}.requests", "metric": f"{name}.requests", "value": 100},
                    {"key": f"{name}.status[200]", "metric": f"{name}.status", "value": 90,
                     "group": {"status": 200}},
                    {"key": f"{name}.status[503]", "metric": f"{name}.status", "value": 10,
                     "group": {"status": 503}},
                    {"key": f"{name}.rt[p50]", "metric": f"{name}.rt", "value": 0.01, "q": 50},
                    {"key": f"{name}.rt[p99]", "metric": f"{name}.rt", "value": 0.25 * (i + 1),
                     "q": 99}]]
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write("".join(json.dumps(dict(r, host="web01", ns=0)) + "\n" for r in records))


def snapshot(at, lines, names=("web",), up=True):
    return Snapshot(at, {n: {"lines": lines, "unmatched": 3, "late": 2, "odd_time": 0,
                             "too_long": 0, "newest": at - 4} for n in names},
                    {"up": up, "backlog": 2048, "sent": 1000, "refused": 1, "given_up": 0})


def test_sparkline_spans_the_bars_from_lowest_to_highest():
    assert sparkline([1, 2, 3, 8]) == BARS[0] + BARS[1] + BARS[2] + BARS[-1]
    assert sparkline([5, 5, 5]) == BARS[4] * 3
    assert sparkline([0, 1], ASCII_BARS) == "_#"
    assert sparkline([]) == ""


def test_status_mix_groups_by_class():
    records = [(None, {"group": {"status": s}, "value": v})
               for s, v in ((200, 80), (204, 10), (503, 10), ("other", 0))]
    assert status_mix(records) == [("2xx", 0.9), ("5xx", 0.1), ("other", 0.0)]


def test_frame_shows_an_input_and_the_sender_within_80_columns(tmp_path):
    config = make_config(tmp_path)
    write_results(tmp_path)
    frame = render(config, snapshot(100.0, 1000), snapshot(102.0, 3000),
                   recent_windows(config))
    text = "\n".join(frame)
    assert all(len(line) <= 80 for line in frame) and len(frame) <= 24
    assert "1,000 lines/s" in text and "lag 4 s" in text
    assert "unmatched 3   late 2" in text
    assert "requests 100" in text and "2xx 90.0%  5xx 10.0%" in text
    assert "request_time  p50 0.010  p99 1.250" in text
    assert "p99 of the last 5 windows  " + sparkline([1, 2, 3, 4, 5]) in text
    assert "zabbix zbx.example:10051  up   backlog 2.0 kB" in text
    assert "sent 1,000   refused 1   given up 0" in text
    assert frame[-1] == "q quits"


def test_frame_is_cut_to_the_terminal(tmp_path):
    names = [f"in{i}" for i in range(6)]
    config = make_config(tmp_path, names)
    for name in names:
        write_results(tmp_path, name)
    frame = render(config, None, snapshot(102.0, 3000, names), recent_windows(config),
                   width=50, height=24)
    assert len(frame) == 24 and all(len(line) <= 50 for line in frame)
    assert frame[-2:] == ["...", "q quits"]
    assert "- lines/s" in "\n".join(frame)         # the first frame: no rate yet


def test_status_line_for_systemd(tmp_path):
    previous, current = snapshot(100.0, 1000), snapshot(105.0, 6000, up=False)
    assert rates(previous, current) == {"web": 1000.0}
    assert status_line(previous, current) == \
        "1 input, 1000 lines/s, lag 4 s, Zabbix DOWN, backlog 2.0 kB"


def test_a_torn_or_foreign_result_line_is_skipped(tmp_path):
    config = make_config(tmp_path)
    write_results(tmp_path, windows=2)
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write('{"key": "web.requests", "clock": 18')          # being written
    assert sorted(recent_windows(config)["web"]) == [1_800_000_000, 1_800_000_060]

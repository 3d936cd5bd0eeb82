"""`plogd top`: a live view of a running plogd in a terminal, in the spirit of GoAccess's
dashboard — per input the lines/s, the status mix, latency percentiles with a sparkline of
the last windows, lag, unmatched and late counts; the sender's backlog and state.

It only reads the state directory (plogd.livestate): it can run beside the daemon, as any
user who may read that directory, over SSH on an 80x24 terminal (curses, from the standard
library). `--once` prints one frame as plain text, for scripts.

The frame is built by pure functions (`render`), the terminal is only drawn on.
"""
from __future__ import annotations

import locale
import sys
import time

from .config import Config, ConfigError
from .livestate import (Snapshot, human_bytes, human_seconds, lag, rates, recent_windows,
                        sender_state, take)
from .metrics import q_text

SPARK_WINDOWS = 20                   # windows a sparkline shows
BARS = "▁▂▃▄▅▆▇█"
ASCII_BARS = "_.-:=+*#"              # for a terminal that cannot show the blocks


def sparkline(values: list[float], bars: str = BARS) -> str:
    """One character per value, from the lowest bar (the smallest value) to the highest
    (the largest); all equal: the middle one."""
    low, high = min(values, default=0), max(values, default=0)
    if high == low:
        return bars[len(bars) // 2] * len(values)
    step = (high - low) / (len(bars) - 1)
    return "".join(bars[round((v - low) / step)] for v in values)


def status_mix(records: list) -> list[tuple[str, float]]:
    """(status class, share) from the records of one window's count grouped by status or
    status_class, e.g. [("2xx", 0.91), ("4xx", 0.09)]."""
    classes: dict[str, float] = {}
    for _, record in records:
        group = record.get("group")
        member = str(next(iter(group.values())) if isinstance(group, dict) and group else "")
        name = member[0] + "xx" if member[:1].isdigit() else member
        classes[name] = classes.get(name, 0) + (record.get("value") or 0)
    total = sum(classes.values())
    return [(name, count / total) for name, count in sorted(classes.items())] if total else []


def _window_view(windows: dict[int, list]) -> dict:
    """From an input's recent windows: the last one's requests, status mix and percentiles,
    and the highest percentile of each of the last SPARK_WINDOWS windows."""
    view: dict = {}
    if not windows:
        return view
    starts = sorted(windows)
    last = windows[starts[-1]]
    view["window"] = starts[-1]
    for metric, record in last:
        if metric.kind == "count" and not (metric.by or metric.where or metric.of):
            view.setdefault("requests", record.get("value"))
    grouped = [(m, r) for m, r in last if m.kind == "count" and m.by in ("status_class",
                                                                        "status")]
    by_class = [(m, r) for m, r in grouped if m.by == "status_class"]
    view["mix"] = status_mix(by_class or grouped)
    percentiles = [m for m, _ in last if m.kind == "percentile"]
    if percentiles:
        metric = percentiles[0]
        view["field"] = metric.field

        def values_of(records):
            return {r["key"]: r.get("value") for m, r in records if m is metric}
        keys = [metric.key.replace("{q}", q_text(q)) for q in metric.q] \
            if "{q}" in metric.key else [metric.key]
        last_values = values_of(last)
        view["percentiles"] = [(f"p{q_text(q)}", last_values.get(k))
                               for q, k in zip(metric.q, keys)]
        highest = keys[-1]
        view["spark_of"] = f"p{q_text(metric.q[-1])}"
        view["spark"] = [values_of(windows[s]).get(highest) or 0
                         for s in starts[-SPARK_WINDOWS:]]
    return view


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:.3f}"
    return f"{value:,.0f}"


def render(config: Config, previous: Snapshot | None, current: Snapshot, windows: dict,
           width: int = 80, height: int = 24, bars: str = BARS) -> list[str]:
    """The lines of one frame, each at most `width` wide, at most `height` of them."""
    clock = time.strftime("%H:%M:%S", time.localtime(current.at))
    lines = [f"plogd top  {config.path}  state {config.state_dir}", ""]
    lines[0] = lines[0][:width - len(clock) - 1].ljust(width - len(clock) - 1) + " " + clock
    per_second = rates(previous, current)
    for spec in config.inputs:
        counters = current.inputs.get(spec.name, {})
        rate = per_second.get(spec.name)
        lines.append(f"{spec.name}  {spec.path}")
        lines.append(f"  {'-' if rate is None else f'{rate:,.0f}'} lines/s   lag "
                     f"{human_seconds(lag(counters, current.at))}   lines "
                     f"{counters.get('lines', 0):,}")
        lines.append(f"  unmatched {counters.get('unmatched', 0):,}   late "
                     f"{counters.get('late', 0):,}   odd time {counters.get('odd_time', 0):,}"
                     f"   too long {counters.get('too_long', 0):,}")
        view = _window_view(windows.get(spec.name, {}))
        if "window" in view:
            start = time.strftime("%H:%M", time.localtime(view["window"]))
            requests = f"   requests {_number(view['requests'])}" if "requests" in view else ""
            mix = "  ".join(f"{name} {share:.1%}" for name, share in view["mix"])
            lines.append(f"  window {start}{requests}   {mix}".rstrip())
        if view.get("percentiles"):
            shown = "  ".join(f"{name} {_number(v)}" for name, v in view["percentiles"])
            lines.append(f"  {view['field']}  {shown}")
            lines.append(f"  {view['spark_of']} of the last {len(view['spark'])} windows  "
                         f"{sparkline(view['spark'], bars)}")
        lines.append("")
    sender = current.sender
    if sender is None:
        lines.append(f"no Zabbix: results written to {config.result_path}")
    else:
        z = config.zabbix
        assert z is not None            # a sender state is read only with Zabbix
        lines.append(f"zabbix {z.server}:{z.port}  {sender_state(sender)}   "
                     f"backlog {human_bytes(sender['backlog'])}")
        lines.append(f"  sent {sender['sent']:,}   refused {sender['refused']:,}   "
                     f"given up {sender['given_up']:,}")
    lines = [line[:width] for line in lines]
    if len(lines) >= height:          # the last line is the key help
        lines = lines[:height - 2] + ["..."]
    return lines + ["q quits"]


def _bars() -> str:
    return BARS if "utf" in locale.getpreferredencoding(False).lower() else ASCII_BARS


def once(config: Config, pause: float = 1.0, out=sys.stdout) -> None:
    """One frame as plain text; the lines/s are measured over `pause` seconds."""
    first = take(config)
    time.sleep(pause)
    frame = render(config, first, take(config), recent_windows(config), width=80,
                   height=1000, bars=_bars())
    out.write("\n".join(frame[:-1]) + "\n")


def run(config: Config, refresh: float = 1.0) -> None:
    import curses
    locale.setlocale(locale.LC_ALL, "")      # curses draws UTF-8 only with the locale set
    try:
        curses.wrapper(_loop, config, refresh)
    except curses.error as e:                # TERM unknown, say
        raise ConfigError(f"top: cannot draw on this terminal ({e}); use --once") \
            from None


def _loop(screen, config: Config, refresh: float) -> None:
    import curses
    try:
        curses.curs_set(0)
    except curses.error:             # a terminal without an invisible cursor
        pass
    screen.timeout(int(refresh * 1000))
    bars = _bars()
    previous = None
    while True:
        current = take(config)
        height, width = screen.getmaxyx()
        screen.erase()
        for y, line in enumerate(render(config, previous, current, recent_windows(config),
                                        width - 1, height, bars)):
            try:
                screen.addstr(y, 0, line)
            except curses.error:     # a terminal smaller than the frame: what fits
                break
        screen.refresh()
        if previous is None or current.at - previous.at >= refresh / 2:
            previous = current       # a key or a resize: rates stay over a whole refresh
        if screen.getch() in (ord("q"), ord("Q")):
            return

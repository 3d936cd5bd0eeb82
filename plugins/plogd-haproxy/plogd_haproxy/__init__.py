"""HAProxy's HTTP log (`option httplog`) as a plogd format: `format: haproxy_http`.

A line as HAProxy sends it to syslog and rsyslog writes it to a file (the syslog head is
optional: `log stdout format raw` and plogd's own `listen:` inputs have none):

    Feb  6 12:14:14 lb1 haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in \
    static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /i HTTP/1.1"

The format is built only from plogd's public pieces (plogd.formats): a regex with named
groups (LogFormat.from_regex), the type of each group (FieldType) and how the time is
written (TimeLayout). plogd derives `status_class` from `status` and `method`, `path`,
`protocol` from `request`, as for its own formats.
"""
from __future__ import annotations

from plogd.formats import FieldType, LogFormat, TimeLayout

__version__ = "0.1.0"
__all__ = ["haproxy_http"]


def _milliseconds(raw: bytes) -> float | None:
    """A timer in ms -> seconds; -1 (the step never happened: the client or the server
    went away first) -> None, so that no latency metric counts it. `+` marks a total
    logged before the end (`option logasap`)."""
    return None if raw == b"-1" else int(raw.lstrip(b"+")) / 1000


def _count(raw: bytes) -> int:
    return int(raw.lstrip(b"+"))


def _status(raw: bytes) -> int | None:
    return None if raw == b"-1" else int(raw)


# the type's name ("int", "float") is what plogd's metrics check a field by
TIMER = FieldType("float", rb"-1|\+?\d+", _milliseconds, True)
COUNT = FieldType("int", rb"\+?\d+", _count, True)
STATUS = FieldType("int", rb"-1|\d{3}", _status, True)
INT = FieldType("int", rb"\d+", int, True)

# HAProxy's own field names; the timers TR/Tw/Tc/Tr/Ta spelled out (TR and Tr differ only in
# case), ending in _time as plogd's time fields do (plogd gives them the unit s in Zabbix)
PATTERN = (
    r"(?:(?:.*? )?[\w./-]+\[(?P<pid>\d+)\]: )?"                  # syslog head, if any
    r"(?P<client_ip>\S+):(?P<client_port>\d+) "
    r"\[(?P<accept_date>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3})\] "
    r"(?P<frontend_name>\S+) (?P<backend_name>[^/ ]+)/(?P<server_name>\S+) "
    r"(?P<receive_time>-1|\d+)/(?P<queue_time>-1|\d+)/(?P<connect_time>-1|\d+)/"
    r"(?P<response_time>-1|\d+)/(?P<active_time>\+?\d+) "
    r"(?P<status>-1|\d{3}) (?P<bytes_read>\+?\d+) "
    r"(?P<captured_request_cookie>\S+) (?P<captured_response_cookie>\S+) "
    r"(?P<termination_state>\S{4}) "
    r"(?P<actconn>\d+)/(?P<feconn>\d+)/(?P<beconn>\d+)/(?P<srv_conn>\d+)/(?P<retries>\+?\d+) "
    r"(?P<srv_queue>\d+)/(?P<backend_queue>\d+) "
    r"(?:\{(?P<captured_request_headers>[^}]*)\} )?(?:\{(?P<captured_response_headers>[^}]*)\} )?"
    r'"(?P<request>[^"]*)"\r?$')                              # RE2 runs it: no \Z

TYPES = {"pid": INT, "client_port": INT, "status": STATUS, "bytes_read": COUNT,
         "retries": COUNT, **dict.fromkeys(["receive_time", "queue_time", "connect_time",
                                            "response_time", "active_time"], TIMER),
         **dict.fromkeys(["actconn", "feconn", "beconn", "srv_conn", "srv_queue",
                          "backend_queue"], INT)}


def haproxy_http() -> LogFormat:
    """The entry point (group plogd.formats, name haproxy_http). HAProxy writes its local
    time without an offset: times are read in this machine's zone, as plogd reads the
    error logs' (plogd runs where the log is written)."""
    return LogFormat.from_regex("haproxy_http", PATTERN, "accept_date",
                                TimeLayout("%d/%b/%Y:%H:%M:%S.%f"), types=TYPES)

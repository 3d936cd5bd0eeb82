"""A real nginx (the Debian package) on 127.0.0.1 writes a `timed` access log, a JSON access
log (escape=json) and its error log, and sends its access log to plogd's syslog input, while
known requests are made — 200s, 404s (an error line each) and 502s from a proxy to a closed
port (an error line each) — and the real logrotate, with Debian's nginx rotation
configuration (postrotate: USR1), rotates the logs twice. plogd --single follows all of it:
its counts per status equal the requests made, on every input, and its error counts equal
the errors caused, through nginx_error and through a regex: input with time_format:."""
import yaml

from servers import (free_port, logrotate, make_requests, need, running, start_plogd,
                     stop_plogd, wait_totals)

PHASE = [("/", 200), ("/missing", 50), ("/up/x", 20)]     # 200, 404, 502
PHASES = 3                                                # rotations between them: 2

NGINX_CONF = """\
user root;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log error;
events {{ worker_connections 128; }}
http {{
    default_type text/plain;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    log_format timed '$remote_addr - $remote_user [$time_local] "$request" '
                     '$status $body_bytes_sent "$http_referer" '
                     '"$http_user_agent" $request_time $upstream_response_time';
    log_format json_log escape=json '{{"time_local":"$time_local",'
        '"remote_addr":"$remote_addr","request":"$request","status":"$status",'
        '"body_bytes_sent":"$body_bytes_sent","request_time":"$request_time",'
        '"upstream_response_time":"$upstream_response_time",'
        '"http_user_agent":"$http_user_agent"}}';
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/html;
        access_log {prefix}/logs/access.log timed;
        access_log {prefix}/logs/access.json.log json_log;
        access_log syslog:server=127.0.0.1:{syslog_port} timed;
        location /up/ {{ proxy_pass http://127.0.0.1:{closed_port}; }}
    }}
}}
"""

ERROR_REGEX = r"regex:(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] "


def plogd_config(state, logs, syslog_port) -> dict:
    """Each input counts by status (access logs) or by level (error logs), under its name."""
    def by(name, field):
        return {"name": name, "lateness": 3,
                "metrics": [{"key": f"{name}.{field}[{{{field}}}]", "type": "count",
                             "by": field}]}
    return {"interval": 2, "state_dir": str(state), "inputs": [
        {**by("access", "status"), "path": f"{logs}/access.log", "format": "nginx_timed",
         "start": "beginning"},
        {**by("json", "status"), "path": f"{logs}/access.json.log", "format": "nginx_json",
         "start": "beginning"},
        {**by("syslog", "status"), "listen": f"udp://127.0.0.1:{syslog_port}",
         "format": "nginx_timed"},
        {**by("error", "level"), "path": f"{logs}/error.log", "format": "nginx_error",
         "start": "beginning"},
        {**by("error_regex", "level"), "path": f"{logs}/error.log", "format": ERROR_REGEX,
         "time_field": "time", "time_format": "%Y/%m/%d %H:%M:%S", "start": "beginning"},
    ]}


def test_plogd_counts_a_real_nginx_through_two_rotations(tmp_path):
    prefix, logs = tmp_path / "nginx", tmp_path / "nginx" / "logs"
    for sub in ("logs", "html", "tmp"):
        (prefix / sub).mkdir(parents=True)
    (prefix / "html" / "index.html").write_text("hello\n")
    port, closed_port = free_port(), free_port()
    syslog_port = free_port(kind=2)           # SOCK_DGRAM
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, syslog_port=syslog_port,
                                      closed_port=closed_port))
    config = tmp_path / "plogd.yaml"
    config.write_text(yaml.safe_dump(plogd_config(tmp_path / "state", logs, syslog_port)))
    plogd_log = tmp_path / "plogd.log"
    nginx = [need("nginx"), "-p", str(prefix), "-c", str(conf), "-e", str(logs / "error.log")]
    with running(nginx, port, tmp_path / "nginx.out"):
        plogd = start_plogd(config, plogd_log, [
            "syslog: listening for syslog messages",
            *(f"{name}: following" for name in ("access", "json", "error", "error_regex"))])
        try:
            made = {}
            for phase in range(PHASES):
                if phase:       # Debian's init script sends USR1 to the master: the same
                    logrotate("logrotate-nginx", f"{logs}/*.log",
                              f"kill -USR1 $(cat {prefix}/nginx.pid)", tmp_path)
                for status, n in make_requests(port, PHASE).items():
                    made[status] = made.get(status, 0) + n
            assert made == {200: 600, 404: 150, 502: 60}
            errors = made[404] + made[502]           # one error line each
            expected = {f"{name}.status[{status}]": n for name in ("access", "json", "syslog")
                        for status, n in made.items()}
            expected.update({"error.level[error]": errors, "error_regex.level[error]": errors})
            got = wait_totals(tmp_path / "state" / "results.jsonl", expected)
        finally:
            assert stop_plogd(plogd) == 0
    rotated = sorted(p.name for p in logs.iterdir())
    assert "access.log.1" in rotated and "access.log.2.gz" in rotated, rotated
    assert got == expected, plogd_log.read_text()[-3000:]     # nothing more, nothing less


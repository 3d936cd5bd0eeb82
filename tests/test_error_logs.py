"""The built-in error-log formats: nginx_error and apache_error (2.2 and 2.4), their default
metric sets, multi-line entries joined by the continuation rule, and `detect` telling error
logs and nginx/Apache access logs apart. (Peer projects' error-log cases: test_peer_cases.)"""
import re

import pytest
import yaml

from helpers import ROOT, plogd, read_records, totals
from plogd.config import ConfigError, from_data, load
from plogd.defaults import config_for_format, metrics_for
from plogd.formats import get_format
from plogd.formats.detect import detect
from plogd.stages.parse import join_continuations

NGINX_ERROR_LOG = b"""\
2024/03/01 10:00:01 [notice] 1234#1234: signal process started
2024/03/01 10:00:02 [error] 1235#1235: *7 open() "/srv/www/missing" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /missing HTTP/1.1", host: "127.0.0.1:8080"
2024/03/01 10:00:03 [error] 1235#1235: *8 open() "/srv/www/other" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /other HTTP/1.1", host: "127.0.0.1:8080"
2024/03/01 10:00:04 [error] 1235#1235: *9 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: localhost, request: "GET /app HTTP/1.1", upstream: "http://127.0.0.1:9/app", host: "127.0.0.1:8080"
2024/03/01 10:00:05 [error] 1235#1235: *10 FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught Exception: boom in /srv/www/index.php:3
Stack trace:
#0 {main}
  thrown in /srv/www/index.php on line 3" while reading response header from upstream, client: 127.0.0.1, server: localhost, request: "GET /index.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php-fpm.sock:", host: "127.0.0.1:8080"
2024/03/01 10:00:06 [warn] 1235#1235: *11 an upstream response is buffered to a temporary file /var/lib/nginx/fastcgi/1/00/0000000001 while reading upstream, client: 127.0.0.1, server: localhost, request: "GET /big HTTP/1.1", upstream: "fastcgi://unix:/run/php/php-fpm.sock:", host: "127.0.0.1:8080"
2024/03/01 10:00:07 [error] 1235#1235: *12 limiting requests, excess: 5.120 by zone "one", client: 127.0.0.1, server: localhost, request: "GET /api HTTP/1.1", host: "127.0.0.1:8080"
"""
APACHE_ERROR_LOG = b"""\
[Fri Mar 01 10:00:01.123456 2024] [mpm_event:notice] [pid 100:tid 200] AH00489: Apache/2.4.62 (Debian) configured -- resuming normal operations
[Fri Mar 01 10:00:02.000001 2024] [core:error] [pid 101:tid 201] [client 127.0.0.1:50000] AH00126: Invalid URI in request GET /../x HTTP/1.1
[Fri Mar 01 10:00:03.5 2024] [proxy:error] [pid 101:tid 202] (111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:9 (127.0.0.1:9) failed
[Fri Mar 01 10:00:03.6 2024] [proxy_http:error] [pid 101:tid 202] [client 127.0.0.1:50001] AH01114: HTTP: failed to make connection to backend: 127.0.0.1
[Fri Mar 01 10:00:04 2024] [error] [client 127.0.0.1] File does not exist: /var/www/favicon.ico
[Fri Mar 01 10:00:05.1 2024] [php:error] [pid 102:tid 203] [client 127.0.0.1:50002] PHP Fatal error:  Uncaught Exception: boom
PHP Stack trace:
PHP   1. {main}() /var/www/index.php:0
"""


def test_nginx_error_fields():
    fmt = get_format("nginx_error")
    lines = NGINX_ERROR_LOG.splitlines()
    upstream = fmt.parse(lines[3])
    assert upstream["level"] == "error" and upstream["pid"] == 1235 and \
        upstream["connection"] == 9
    assert upstream["upstream"] == "http://127.0.0.1:9/app" and upstream["path"] == "/app"
    assert upstream["message_kind"] == \
        "connect() failed (N: Connection refused) while connecting to upstream"
    assert fmt.parse(lines[0])["connection"] is None and fmt.parse(lines[0])["client"] is None
    limited = fmt.parse(lines[-1])
    assert (limited["message"], limited["excess"], limited["zone"]) == \
        ("limiting requests", 5.12, "one")


def test_apache_error_fields_of_both_layouts():
    fmt = get_format("apache_error")
    lines = APACHE_ERROR_LOG.splitlines()
    refused = fmt.parse(lines[2])
    assert (refused["module"], refused["level"], refused["pid"], refused["tid"]) == \
        ("proxy", "error", 101, 202)
    assert (refused["os_error"], refused["os_error_text"], refused["ah_code"]) == \
        (111, "Connection refused", "AH00957")
    assert fmt.parse(lines[1])["client_port"] == 50000
    old = fmt.parse(lines[4])         # 2.2: no module, pid or port, no fraction
    assert (old["module"], old["level"], old["client"], old["client_port"], old["ah_code"]) == \
        (None, "error", "127.0.0.1", None, None)
    assert old["timestamp"] - fmt.parse(lines[1])["timestamp"] == 2


def test_join_continuations_appends_to_the_line_before_and_drops_a_leading_one():
    continues = re.compile(rb"(?!\[)").match
    lines = [b"  #1 orphan", b"[a] one", b"more", b"", b"[b] two"]
    assert join_continuations(lines, continues) == [b"[a] one\nmore\n", b"[b] two"]


@pytest.mark.parametrize("name,log,expected", [
    ("nginx_error", NGINX_ERROR_LOG, {"nginx.error.lines": 7, "nginx.error.level[notice]": 1,
                                      "nginx.error.level[error]": 5, "nginx.error.level[warn]": 1,
                                      "nginx.error.upstream": 2, "nginx.error.limited": 1}),
    ("apache_error", APACHE_ERROR_LOG, {"apache.error.lines": 6, "apache.error.level[notice]": 1,
                                        "apache.error.level[error]": 5,
                                        "apache.error.code[AH00489]": 1,
                                        "apache.error.code[AH00126]": 1,
                                        "apache.error.code[AH00957]": 1,
                                        "apache.error.code[AH01114]": 1}),
])
def test_replay_counts_by_level_with_multi_line_entries_joined(tmp_path, name, log, expected):
    path = tmp_path / "error.log"
    path.write_bytes(log)
    result = plogd("replay", "--format", name, str(path))
    got = totals(read_records(result.stdout))
    assert {k: v for k, v in got.items() if k in expected} == expected
    assert b" 0 unmatched" in result.stderr      # the stack trace lines are no lines of their own


def test_the_continuation_rule_is_configurable(tmp_path):
    log = tmp_path / "error.log"
    log.write_bytes(NGINX_ERROR_LOG)
    data = config_for_format("nginx_error")
    data["inputs"][0]["continuation"] = ""          # off: the stack trace lines are unmatched
    config = tmp_path / "plogd.yaml"
    config.write_text(yaml.safe_dump(data))
    assert b"3 unmatched" in plogd("replay", "-c", str(config), str(log)).stderr
    data["inputs"][0]["continuation"] = "(["
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="inputs\\[0\\].continuation: not a valid regular"):
        load(str(config))


def test_the_shipped_error_log_configuration_holds_the_default_sets():
    data = yaml.safe_load((ROOT / "conf" / "error-logs.yaml").read_text())
    assert [(i["format"], i["metrics"]) for i in data["inputs"]] == \
        [(f, metrics_for(f)) for f in ("nginx_error", "apache_error")]
    assert b"OK" in plogd("check", "-c", str(ROOT / "conf" / "error-logs.yaml")).stdout
    for name in ("nginx_error", "apache_error"):
        from_data(name, config_for_format(name))


def test_detect_knows_error_logs_and_breaks_access_log_ties_by_evidence(tmp_path):
    assert detect(NGINX_ERROR_LOG.splitlines())[0][0] == "nginx_error"
    assert detect(APACHE_ERROR_LOG.splitlines()[:5])[0] == ("apache_error", 1.0)
    line = b'1.2.3.4 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 %s "-" "curl"'
    no_body = [line % b"-", line % b"5"]            # Apache's %b writes '-', nginx 0
    assert detect(no_body)[0][0] == "apache_combined"
    assert detect([line % b"5"])[0][0] == "nginx_combined"      # a tie, no evidence
    assert detect([line % b"5"], "/var/log/httpd/access_log")[0][0] == "apache_combined"
    path = tmp_path / "access.log"
    path.write_bytes(line % b"5" + b"\n")
    out = plogd("detect", str(path)).stdout.decode()
    assert "nginx_combined and apache_combined match the same lines" in out

"""A real Apache (the Debian package) on 127.0.0.1, with %D in its LogFormat and its error log
at level info, while ab and a request loop make known requests — 200s, 404s (an AH00128 info
line each) and 503s from a proxy to a closed port (AH01114 at error level each) — and the
real logrotate, with Debian's apache2 rotation configuration (postrotate: a graceful
restart), rotates the logs twice. plogd --single's counts per status equal the requests made,
and its error-log counts equal the errors caused, through apache_error and through a regex:
input with time_format:."""
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

from servers import (free_port, logrotate, make_requests, need, running, start_plogd,
                     stop_plogd, wait_totals)

AB_REQUESTS = 300
ERRORS = [("/missing", 40), ("/up/x", 15)]      # 404, 503
PHASES = 3                                     # rotations between them: 2
LOG_FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D'
MODULES = "/usr/lib/apache2/modules"

APACHE_CONF = """\
ServerRoot "{prefix}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {prefix}/apache2.pid
DefaultRuntimeDir {prefix}/run
User www-data
Group www-data
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule dir_module {modules}/mod_dir.so
LoadModule proxy_module {modules}/mod_proxy.so
LoadModule proxy_http_module {modules}/mod_proxy_http.so
ErrorLog {logs}/error.log
LogLevel info
LogFormat "{log_format}" timed
CustomLog {logs}/access.log timed
DocumentRoot "{docroot}"
<Directory "{docroot}">
    Require all granted
</Directory>
ProxyPass /up/ http://127.0.0.1:{closed_port}/ retry=0
"""
ERROR_REGEX = (r"regex:\[(?P<time>[^]]+)\] \[(?:[^]:]*:)?(?P<level>\w+)\]"
               r"(?:.*?(?P<ah_code>AH\d{5}):)?")


def plogd_config(state, logs) -> dict:
    def by(name, field):
        return {"name": name, "lateness": 3, "start": "beginning",
                "metrics": [{"key": f"{name}.{field}[{{{field}}}]", "type": "count",
                             "by": field}]}
    return {"interval": 2, "state_dir": str(state), "inputs": [
        {**by("access", "status"), "path": f"{logs}/access.log", "apache_format": LOG_FORMAT},
        {**by("error", "ah_code"), "path": f"{logs}/error.log", "format": "apache_error"},
        {**by("error_regex", "ah_code"), "path": f"{logs}/error.log", "format": ERROR_REGEX,
         "time_field": "time", "time_format": "%a %b %d %H:%M:%S.%f %Y"},
    ]}


def ab(port: int, requests: int) -> int:
    """ab's count of complete requests answered 2xx."""
    out = subprocess.run([need("ab"), "-q", "-k", "-c", "2", "-n", str(requests),
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         timeout=120).stdout
    complete = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    failed = re.search(r"Non-2xx responses:\s+(\d+)", out)
    assert re.search(r"Failed requests:\s+0\b", out), out
    return complete - (int(failed.group(1)) if failed else 0)


def test_plogd_counts_a_real_apache_through_two_rotations(tmp_path):
    prefix, logs = tmp_path / "apache", tmp_path / "apache" / "logs"
    for sub in ("logs", "run"):
        (prefix / sub).mkdir(parents=True)
    # the children run as www-data: their document root must be theirs to read
    docroot = Path(tempfile.mkdtemp(prefix="plogd-apache-"))
    try:
        docroot.chmod(0o755)
        (docroot / "index.html").write_text("hello\n")
        port, closed_port = free_port(), free_port()
        conf = prefix / "apache2.conf"
        conf.write_text(APACHE_CONF.format(prefix=prefix, logs=logs, port=port, docroot=docroot,
                                           closed_port=closed_port, modules=MODULES,
                                           log_format=LOG_FORMAT.replace('"', '\\"')))
        config = tmp_path / "plogd.yaml"
        config.write_text(yaml.safe_dump(plogd_config(tmp_path / "state", logs)))
        plogd_log = tmp_path / "plogd.log"
        apache = [need("apache2"), "-f", str(conf), "-DFOREGROUND"]
        with running(apache, port, tmp_path / "apache.out"):
            plogd = start_plogd(config, plogd_log, [
                f"{name}: following" for name in ("access", "error", "error_regex")])
            try:
                made = {200: 0}
                for phase in range(PHASES):
                    if phase:   # Debian's reload is a graceful restart: USR1 to the parent
                        logrotate("logrotate-apache2", f"{logs}/*.log",
                                  f"kill -USR1 $(cat {prefix}/apache2.pid)", tmp_path)
                    made[200] += ab(port, AB_REQUESTS)
                    for status, n in make_requests(port, ERRORS).items():
                        made[status] = made.get(status, 0) + n
                assert made == {200: 900, 404: 120, 503: 45}
                expected = {f"access.status[{s}]": n for s, n in made.items()}
                for name in ("error", "error_regex"):
                    expected[f"{name}.ah_code[AH00128]"] = made[404]   # File does not exist
                    expected[f"{name}.ah_code[AH01114]"] = made[503]   # failed to connect
                got = wait_totals(tmp_path / "state" / "results.jsonl", expected)
            finally:
                assert stop_plogd(plogd) == 0
        rotated = sorted(p.name for p in logs.iterdir())
        assert "access.log.1" in rotated and "access.log.2.gz" in rotated, rotated
        assert {k: got[k] for k in expected} == expected, plogd_log.read_text()[-3000:]
        assert {k: v for k, v in got.items() if k.startswith("access.")} == \
            {k: v for k, v in expected.items() if k.startswith("access.")}
        # both readings of the error log agree on every line's AH code
        assert {k.split(".", 1)[1]: v for k, v in got.items() if k.startswith("error.")} == \
            {k.split(".", 1)[1]: v for k, v in got.items() if k.startswith("error_regex.")}
    finally:
        shutil.rmtree(docroot)

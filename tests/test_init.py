"""`plogd init LOGFILE...`: each log's format detected and its default metric set written as
a commented configuration that loads; unfit and empty logs refused with what to do; an
existing configuration kept; the systemd unit (ExecStart naming this installation's plogd)
and the plogd user installed where missing. Every run here is under --root tmp_path: nothing
touches the real system."""
import os
import subprocess

import pytest

from plogd.cli import main
from plogd.config import load
from plogd.init import plogd_executable

COMBINED = ('203.0.113.{i} - - [03/Dec/2026:09:00:{i:02d} +0000] "GET /x HTTP/1.1" 200 512 '
            '"-" "curl/8"\n')
TIMED = COMBINED.replace('"curl/8"\n', '"curl/8" 0.012 0.010\n')
APACHE = '203.0.113.{i} - frank [03/Dec/2026:09:00:{i:02d} +0000] "GET /x HTTP/1.1" 200 512\n'


@pytest.fixture
def init(tmp_path, capsys):
    """init(*arguments) -> (exit code, output), always under --root tmp_path/root."""
    def run(*arguments):
        capsys.readouterr()
        code = main(["init", "--root", str(tmp_path / "root"), *arguments])
        out, err = capsys.readouterr()
        return code, out + err
    return run


def log(tmp_path, name, line, n=20):
    path = tmp_path / name
    path.write_text("".join(line.format(i=i) for i in range(n)))
    return str(path)


def test_each_log_gets_its_format_and_default_set_and_the_file_loads(tmp_path, init):
    access, api = log(tmp_path, "access.log", COMBINED), log(tmp_path, "api.log", TIMED)
    other = log(tmp_path, "other_vhosts_access.log", APACHE)
    out = tmp_path / "plogd.yaml"
    code, text = init(access, api, other, "-o", str(out), "--zabbix-server", "zbx.example:10052",
                      "--host", "web01")
    assert code == 0, text
    assert f"{access}: format nginx_combined (matches 100% of 20 lines) -> input access" in text
    assert f"{api}: format nginx_timed (matches 100% of 20 lines) -> input api" in text
    assert f"{other}: format apache_common (matches 100% of 20 lines) -> input other_vhosts_access" in text
    assert f"plogd zabbix provision -c {out} --url" in text and "systemctl enable --now plogd" in text
    config = load(str(out))
    assert (config.zabbix.server, config.zabbix.port, config.zabbix.host) == ("zbx.example", 10052, "web01")
    assert [(i.name, i.path, i.format.name) for i in config.inputs] == [
        ("access", access, "nginx_combined"), ("api", api, "nginx_timed"),
        ("other_vhosts_access", other, "apache_common")]
    # two nginx logs go to one host: their keys carry the input's name; the only apache log not
    assert [m.key for m in config.inputs[0].metrics][:2] == ["nginx.access.requests",
                                                             "nginx.access.status[{status}]"]
    assert "nginx.api.request_time[p{q}]" in [m.key for m in config.inputs[1].metrics]
    assert [m.key for m in config.inputs[2].metrics][0] == "apache.requests"


def test_a_stock_combined_log_gets_no_timings_and_the_log_format_that_adds_them(tmp_path, init):
    access = log(tmp_path, "access.log", COMBINED)
    out = tmp_path / "plogd.yaml"
    assert init(access, "-o", str(out))[0] == 0
    text = out.read_text()
    config = load(str(out))
    assert not [m for m in config.inputs[0].metrics if m.field == "request_time"]
    assert ("#   log_format timed '$remote_addr - $remote_user [$time_local] \"$request\" $status "
            "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_time "
            "$upstream_response_time';") in text
    # following the comment (format nginx_timed, metrics uncommented) gives a valid file
    followed = text.replace("format: nginx_combined", "format: nginx_timed").replace(
        "      # - {", "      - {")
    out.write_text(followed)
    keys = [m.key for m in load(str(out)).inputs[0].metrics]
    assert "nginx.request_time[p{q}]" in keys and "nginx.upstream_time.avg" in keys


def test_a_log_no_format_fits_is_refused_with_the_detect_report(tmp_path, init):
    bad = tmp_path / "app.log"
    bad.write_text("started worker 1\nstarted worker 2\n")
    out = tmp_path / "plogd.yaml"
    code, text = init(str(bad), "-o", str(out))
    assert code == 2 and not out.exists()
    assert text.startswith(f"plogd: {bad}: no built-in format fits (at least 90% of the lines); "
                           "of the first 2 lines:\n  nginx_combined              0.0%\n")
    assert "nginx_combined: line 1 does not match: b'started worker 1'" in text
    assert "log_format: (nginx), apache_format: (Apache) or format: regex:" in text


def test_an_empty_or_missing_log_needs_format(tmp_path, init):
    empty = tmp_path / "access.log"
    empty.write_text("")
    out = tmp_path / "plogd.yaml"
    code, text = init(str(empty), "-o", str(out))
    assert code == 2 and "the log is empty, so its format cannot be detected; give --format" in text
    code, text = init(str(tmp_path / "later.log"), "-o", str(out))
    assert code == 2 and "no such file; give --format NAME for a log that does not exist yet" in text
    code, text = init(str(empty), str(tmp_path / "later.log"), "--format", "nginx_timed",
                      "-o", str(out))
    assert code == 0, text
    assert [i.format.name for i in load(str(out)).inputs] == ["nginx_timed", "nginx_timed"]


def test_an_existing_configuration_is_kept_without_force(tmp_path, init):
    access = log(tmp_path, "access.log", COMBINED)
    out = tmp_path / "plogd.yaml"
    out.write_text("# mine\n")
    code, text = init(access, "-o", str(out))
    assert code == 2 and f"{out} exists: plogd init never overwrites a configuration" in text
    assert out.read_text() == "# mine\n"
    assert init(access, "-o", str(out), "--force")[0] == 0
    assert load(str(out)).inputs[0].format.name == "nginx_combined"


def test_the_agent_configuration_found_gives_server_and_host(tmp_path, init):
    agent = tmp_path / "root" / "etc" / "zabbix" / "zabbix_agent2.conf"
    agent.parent.mkdir(parents=True)
    agent.write_text("ServerActive=zbx.example.com:10055\nHostname=shop-web\n")
    assert init(log(tmp_path, "access.log", COMBINED))[0] == 0
    config = load(str(tmp_path / "root" / "etc" / "plogd" / "plogd.yaml"))   # the default -o
    assert (config.zabbix.server, config.zabbix.port, config.zabbix.host) == (
        "zbx.example.com", 10055, "shop-web")
    assert config.zabbix.agent_config == str(agent)


def test_the_unit_and_the_user_are_installed_where_missing(tmp_path, init):
    root = tmp_path / "root"
    code, text = init(log(tmp_path, "access.log", COMBINED))
    assert code == 0, text
    unit = root / "etc" / "systemd" / "system" / "plogd.service"
    assert f"systemd unit: installed {unit} (ExecStart={plogd_executable()})" in text
    assert f"ExecStart={plogd_executable()} --multi -c /etc/plogd/plogd.yaml\n" in unit.read_text()
    assert os.access(plogd_executable(), os.X_OK)
    assert (root / "usr" / "lib" / "sysusers.d" / "plogd.conf").read_text().startswith("# systemd-sysusers")
    passwd = (root / "etc" / "passwd").read_text()
    assert passwd.startswith("plogd:") and ":/var/lib/plogd:" in passwd
    assert "plogd" in [l for l in (root / "etc" / "group").read_text().splitlines()
                       if l.startswith("adm:")][0]
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert not [l for l in verify.stderr.splitlines() if "plogd.service" in l], verify.stderr

    unit.write_text(unit.read_text() + "# edited\n")
    code, text = init(log(tmp_path, "access.log", COMBINED), "--force")
    assert code == 0
    assert "systemd unit: /etc/systemd/system/plogd.service is there, kept" in text
    assert "system user: plogd exists" in text
    assert unit.read_text().endswith("# edited\n")


@pytest.mark.parametrize("value,message", [
    ("zbx:70000", "--zabbix-server: port 70000 is not 1 to 65535"),
    ("a,b", "--zabbix-server: found 'a,b'; expected one server, HOST[:PORT]"),
])
def test_a_bad_zabbix_server_is_one_line(tmp_path, init, value, message):
    code, text = init(log(tmp_path, "access.log", COMBINED), "-o", str(tmp_path / "c.yaml"),
                      "--zabbix-server", value)
    assert code == 2 and text.startswith("plogd: " + message) and len(text.splitlines()) == 1


def test_not_root_writes_the_configuration_only(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("plogd.init.os.geteuid", lambda: 1000)
    out = tmp_path / "plogd.yaml"
    assert main(["init", log(tmp_path, "access.log", COMBINED), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "not root: the systemd unit and the plogd user are not installed" in text
    assert "systemd unit:" not in text and load(str(out)).inputs[0].format.name == "nginx_combined"

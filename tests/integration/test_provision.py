"""`plogd zabbix provision` against the real Zabbix 6.0 testbed: the template generated from
the configuration is imported and the host created once; a second run changes nothing and
says so; an existing host keeps its other templates; --dry-run changes nothing; --prune,
--proxy, --wait; refusals are one line.

Every object is named zbx-provision-* and deleted before and after each test (the testbed is
shared); the template gets its name from --name.
"""
import pytest

from plogd.cli import main

PREFIX = "zbx-provision-"
HOST = PREFIX + "web01"
TEMPLATE = PREFIX + "template"
GROUP = PREFIX + "hosts"
PASSWORD = "zabbix"
BYTES = "      - {key: nginx.bytes, type: sum, field: body_bytes_sent}\n"
CONFIG = f"""\
state_dir: /tmp/unused
zabbix: {{server: 127.0.0.1, host: {HOST}}}
inputs:
  - name: web
    path: /tmp/unused.log
    format: nginx_combined
    metrics:
      - {{key: nginx.requests, type: count}}
      - {{key: "nginx.status[{{status}}]", type: count, by: status}}
{BYTES}"""


@pytest.fixture
def api(zabbix):
    zabbix.delete_named(PREFIX)
    yield zabbix.api()
    zabbix.delete_named(PREFIX)


@pytest.fixture
def provision(tmp_path, zabbix, monkeypatch, capsys):
    """provision(*options) -> (exit code, output): `plogd zabbix provision` in this process."""
    config = tmp_path / "plogd.yaml"
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    for name in ("ZABBIX_URL", "ZABBIX_TOKEN", "ZABBIX_USER", "ZABBIX_PASSWORD"):
        monkeypatch.delenv(name, raising=False)

    def run(*options, login=("--user", zabbix.user, "--password-file", str(secret)),
            url=zabbix.api_url, text=CONFIG):
        config.write_text(text)
        capsys.readouterr()
        code = main(["zabbix", "provision", "-c", str(config), *(["--url", url] if url else []),
                     "--name", TEMPLATE, "--group", GROUP, *login, *options])
        out, err = capsys.readouterr()
        print(out, err)
        return code, out + err
    return run


def host_of(api):
    return api.host.get(filter={"host": [HOST]}, selectParentTemplates=["host"],
                        selectGroups=["name"], output=["hostid", "proxy_hostid"])


def test_provision_twice_one_host_template_linked_once_second_run_changes_nothing(api, provision):
    code, out = provision()
    assert code == 0
    assert f"import template {TEMPLATE}: 1 template, " in out and " items, " in out
    assert " discovery rules, " in out and " item prototypes, " in out
    assert f"create host group {GROUP}: done" in out
    assert f"create host {HOST} in group {GROUP} with template {TEMPLATE}: done" in out
    [host] = host_of(api)
    assert [t["host"] for t in host["parentTemplates"]] == [TEMPLATE]
    assert [g["name"] for g in host["groups"]] == [GROUP]
    keys = {i["key_"] for i in api.item.get(hostids=host["hostid"], output=["key_"])}
    assert {"nginx.requests", "nginx.bytes", "plogd.heartbeat"} <= keys

    code, out = provision()
    assert code == 0
    assert out.strip().endswith(f"host {HOST}: nothing to change")
    assert len(host_of(api)) == 1
    assert [t["host"] for t in host_of(api)[0]["parentTemplates"]] == [TEMPLATE]
    assert PASSWORD not in out.replace("zabbix provision", "")


def test_an_existing_host_keeps_its_other_templates(api, provision):
    group = api.hostgroup.create(name=GROUP)["groupids"][0]
    other = api.template.create(host=PREFIX + "other", groups=[{"groupid": group}])["templateids"][0]
    api.host.create(host=HOST, groups=[{"groupid": group}], templates=[{"templateid": other}])

    code, out = provision()
    assert code == 0
    assert f"link template {TEMPLATE} to host {HOST} (keeping {PREFIX}other): done" in out
    assert "create host" not in out
    [host] = host_of(api)
    assert sorted(t["host"] for t in host["parentTemplates"]) == [PREFIX + "other", TEMPLATE]
    assert provision()[1].strip().endswith("nothing to change")


def test_dry_run_says_what_would_change_and_changes_nothing(api, provision):
    code, out = provision("--dry-run")
    assert code == 0
    assert "dry run, nothing changed; would:" in out
    assert f"create host {HOST} in group {GROUP} with template {TEMPLATE}" in out
    assert "done" not in out
    assert not host_of(api)
    assert not api.template.get(filter={"host": [TEMPLATE]})
    assert not api.hostgroup.get(filter={"name": [GROUP]})


def test_items_gone_from_the_configuration_are_kept_unless_pruned(api, provision):
    assert provision()[0] == 0
    code, out = provision(text=CONFIG.replace(BYTES, ""))
    assert code == 0
    assert f"note: the server's template {TEMPLATE} has 1 item, " in out
    assert "that the configuration no longer has: kept (--prune deletes them)" in out
    assert api.item.get(host=TEMPLATE, filter={"key_": ["nginx.bytes"]})

    code, out = provision("--prune", text=CONFIG.replace(BYTES, ""))
    assert code == 0 and f"import template {TEMPLATE}: " in out and "1 item, " in out
    assert not api.item.get(host=TEMPLATE, filter={"key_": ["nginx.bytes"]})
    assert provision("--prune", text=CONFIG.replace(BYTES, ""))[1].strip().endswith(
        "nothing to change")


def test_proxy_is_assigned_and_an_unknown_one_is_one_line(api, provision):
    proxyid = api.proxy.create(host=PREFIX + "proxy", status=5)["proxyids"][0]
    code, out = provision("--proxy", PREFIX + "nope")
    assert code == 2
    assert out.strip().splitlines() == [
        f"plogd: --proxy: no proxy named '{PREFIX}nope' on the server; its proxies: "
        + ", ".join(sorted(p["host"] for p in api.proxy.get(output=["host"])))]
    assert not host_of(api)

    assert provision()[0] == 0
    code, out = provision("--proxy", PREFIX + "proxy")
    assert code == 0 and f"have host {HOST} monitored by proxy {PREFIX}proxy: done" in out
    assert host_of(api)[0]["proxy_hostid"] == proxyid
    assert provision("--proxy", PREFIX + "proxy")[1].strip().endswith("nothing to change")


@pytest.mark.parametrize("case", ["bad url", "wrong password", "bad token", "no credentials"])
def test_refusals_are_one_line_exit_2_and_print_no_secret(api, provision, tmp_path, case, zabbix):
    secret = "wrong-secret-4711"
    (tmp_path / "secret").write_text(secret)
    # a user that does not exist: wrong passwords for Admin would block the shared testbed's
    # Admin for 30 s after five of them
    wrong = ("--user", PREFIX + "nobody", "--password-file", str(tmp_path / "secret"))
    if case == "bad url":
        code, out = provision(login=wrong, url="http://127.0.0.1:9/zabbix")
        expected = "plogd: cannot reach the Zabbix API at http://127.0.0.1:9/zabbix: "
    elif case == "wrong password":
        code, out = provision(login=wrong)
        expected = f"plogd: the Zabbix API at {zabbix.api_url} refused user {PREFIX}nobody: "
    elif case == "bad token":
        code, out = provision(login=("--token-file", str(tmp_path / "secret")))
        expected = f"plogd: the Zabbix API at {zabbix.api_url} refused the token: "
    else:
        code, out = provision(login=())
        expected = "plogd: no credentials: give --token-file FILE (or ZABBIX_TOKEN)"
    assert code == 2
    assert len(out.strip().splitlines()) == 1 and out.startswith(expected), out
    assert secret not in out and "Traceback" not in out
    assert not host_of(api)


def test_the_environment_gives_url_and_credentials(api, provision, zabbix, monkeypatch):
    monkeypatch.setenv("ZABBIX_URL", zabbix.api_url)
    monkeypatch.setenv("ZABBIX_USER", zabbix.user)
    monkeypatch.setenv("ZABBIX_PASSWORD", PASSWORD)
    code, out = provision(login=(), url=None)
    assert code == 0 and f"create host {HOST}" in out
    assert len(host_of(api)) == 1


def test_wait_returns_at_the_first_value_of_the_host(api, provision, zabbix):
    assert provision("--wait", "3")[0] == 1      # nothing sends: a bounded wait, then 1
    zabbix.reload_config_cache()                 # the new host's items are known to the trapper
    assert zabbix.sender().send_value(HOST, "nginx.requests", "7").processed == 1
    code, out = provision("--wait", "60")
    assert code == 0
    assert "nothing to change" in out and "first value: nginx.requests at " in out


def test_an_api_token_from_a_file_logs_in(api, provision, tmp_path):
    tokenid = api.token.create(name=PREFIX + "token", userid="1")["tokenids"][0]
    try:
        token = api.token.generate(tokenid)[0]["token"]
        (tmp_path / "token").write_text(token + "\n")
        code, out = provision(login=("--token-file", str(tmp_path / "token")))
        assert code == 0 and f"create host {HOST}" in out
        assert token not in out
    finally:
        api.token.delete(tokenid)


def test_a_configuration_without_zabbix_is_refused(api, provision, tmp_path):
    config = tmp_path / "plogd.yaml"
    code, out = provision(text=CONFIG.replace(f"zabbix: {{server: 127.0.0.1, host: {HOST}}}\n", ""))
    assert code == 2
    assert out.strip() == (f"plogd: {config}: no zabbix: section, so plogd sends nothing; add "
                           "one (server, host) before provisioning")

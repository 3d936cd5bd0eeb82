"""Python API to the real Zabbix 6.0 testbed of tests/zabbix/start-zabbix.sh.

Typical use in a test (a conftest wraps start_testbed() in a session fixture):

    tb = start_testbed()
    tb.reset_trapper_items("web01", {"plogd.requests": "uint"})   # clean items, cache synced
    ... run plogd, which sends to tb.server:tb.port ...
    rows = tb.wait_history("web01", "plogd.requests", "uint", expected_count=3)

Clean state: reset_trapper_items() deletes the items and creates them again, so each test
starts with new itemids and therefore an empty history (history rows belong to an itemid;
the testbed never runs the housekeeper, which is harmless for a throw-away server).
"""
import os
import subprocess
import time
import uuid
from pathlib import Path

from zabbix_utils import Sender, ZabbixAPI

START_SCRIPT = Path(__file__).parent / "zabbix" / "start-zabbix.sh"
GROUP = "CI log metrics"
PROBE_HOST = "web01"  # created by start-zabbix.sh
# Zabbix value_type of an item == the `history` table selector of history.get
VALUE_TYPES = {"float": 0, "uint": 3, "text": 4}
PARSE = {"float": float, "uint": int, "text": str}
TRAPPER = 2


def testbed_base() -> Path:
    """Directory of the testbed state; same default as start-zabbix.sh."""
    return Path(os.environ.get("ZBX_BASE") or Path(os.environ.get("TMPDIR", "/tmp"), "zabbix-testbed"))


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the KEY=VALUE lines of zabbix.env."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def start_testbed(timeout: float = 900) -> "Testbed":
    """Run start-zabbix.sh (idempotent; installs packages on a fresh machine) and connect."""
    base = testbed_base()
    proc = subprocess.run(
        ["bash", str(START_SCRIPT)], env={**os.environ, "ZBX_BASE": str(base)},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"{START_SCRIPT} failed (exit {proc.returncode}):\n{tail}")
    env = read_env_file(base / "zabbix.env")
    return Testbed(server=env["ZBX_SERVER"], port=int(env["ZBX_PORT"]), api_url=env["ZBX_API_URL"],
                   user=env["ZBX_API_USER"], password=env["ZBX_API_PASSWORD"],
                   server_conf=env["ZBX_SERVER_CONF"])


class Testbed:
    """A running testbed: trapper at server:port, JSON-RPC API at api_url."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, server: str, port: int, api_url: str, user: str, password: str,
                 server_conf: str):
        self.server = server
        self.port = port
        self.api_url = api_url
        self.user = user
        self.password = password
        self.server_conf = server_conf
        self._api = None

    def api(self) -> ZabbixAPI:
        """Logged-in API client (created once)."""
        if self._api is None:
            self._api = ZabbixAPI(url=self.api_url, user=self.user, password=self.password)
        return self._api

    def sender(self) -> Sender:
        """A zabbix_utils Sender for the trapper (no TLS)."""
        return Sender(server=self.server, port=self.port)

    def ensure_host(self, host: str) -> str:
        """Hostid of `host`, created in group "CI log metrics" if missing."""
        api = self.api()
        found = api.host.get(filter={"host": [host]}, output=["hostid"])
        if found:
            return found[0]["hostid"]
        groups = api.hostgroup.get(filter={"name": [GROUP]}, output=["groupid"])
        groupid = groups[0]["groupid"] if groups else api.hostgroup.create(name=GROUP)["groupids"][0]
        return api.host.create(host=host, groups=[{"groupid": groupid}])["hostids"][0]

    def ensure_trapper_items(self, host: str, items: dict[str, str]) -> dict[str, str]:
        """Make trapper items {key: "uint"|"float"|"text"} exist on `host`, accepting values
        from any address; returns {key: itemid}. Call reload_config_cache() before sending."""
        api = self.api()
        hostid = self.ensure_host(host)
        have = {i["key_"]: i for i in api.item.get(
            hostids=hostid, filter={"key_": list(items)},
            output=["itemid", "key_", "type", "value_type", "trapper_hosts"])}
        itemids = {}
        for key, kind in items.items():
            wanted = {"type": TRAPPER, "value_type": VALUE_TYPES[kind], "trapper_hosts": ""}
            item = have.get(key)
            if item is None:
                itemids[key] = api.item.create(hostid=hostid, name=key, key_=key, **wanted)["itemids"][0]
                continue
            if any(str(item[field]) != str(value) for field, value in wanted.items()):
                api.item.update(itemid=item["itemid"], **wanted)
            itemids[key] = item["itemid"]
        return itemids

    def delete_items(self, host: str, keys: list[str]) -> None:
        """Delete the items `keys` of `host` that exist (their history goes with the itemid)."""
        api = self.api()
        found = api.item.get(host=host, filter={"key_": list(keys)}, output=["itemid"])
        if found:
            api.item.delete([i["itemid"] for i in found])

    def reset_trapper_items(self, host: str, items: dict[str, str]) -> dict[str, str]:
        """Fresh trapper items (new itemids, empty history), ready to accept values."""
        self.delete_items(host, list(items))
        itemids = self.ensure_trapper_items(host, items)
        self.reload_config_cache()
        return itemids

    def reload_config_cache(self, timeout: float = 30) -> None:
        """Make the trapper know every item created so far.

        Creates a new probe item, asks zabbix_server to reload its configuration cache
        (again every 2 s, in case a request falls into a running sync) and waits until the
        trapper accepts a value for the probe: the sync that brought the probe in brought
        all earlier items too. Raises TimeoutError after `timeout` seconds.
        """
        probe_key = f"ci.probe[{uuid.uuid4().hex}]"
        self.ensure_trapper_items(PROBE_HOST, {probe_key: "uint"})
        deadline = time.monotonic() + timeout
        next_reload = 0.0
        try:
            while time.monotonic() < deadline:
                if time.monotonic() >= next_reload:
                    self._runtime_control("config_cache_reload")
                    next_reload = time.monotonic() + 2
                if self.sender().send_value(PROBE_HOST, probe_key, "1").processed == 1:
                    return
                time.sleep(0.1)
            raise TimeoutError(f"zabbix_server config cache did not pick up new item {probe_key} "
                               f"within {timeout} s")
        finally:
            self.delete_items(PROBE_HOST, [probe_key])

    def _runtime_control(self, command: str) -> None:
        """Run `zabbix_server -R command` against the testbed server."""
        proc = subprocess.run(["zabbix_server", "-c", self.server_conf, "-R", command],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"zabbix_server -R {command} failed: {proc.stdout}{proc.stderr}")

    def history(self, host: str, key: str, value_type: str) -> list[tuple[int, int, object]]:
        """Stored values of item `key` on `host` as (clock, ns, value), sorted by clock, ns;
        value is int / float / str for "uint" / "float" / "text"."""
        api = self.api()
        items = api.item.get(host=host, filter={"key_": [key]}, output=["itemid"])
        if not items:
            raise LookupError(f"no item {key!r} on host {host!r}")
        rows = api.history.get(itemids=[items[0]["itemid"]], history=VALUE_TYPES[value_type],
                               output="extend")
        parse = PARSE[value_type]
        return sorted((int(r["clock"]), int(r["ns"]), parse(r["value"])) for r in rows)

    def wait_history(self, host: str, key: str, value_type: str, expected_count: int,
                     timeout: float = 30) -> list[tuple[int, int, object]]:
        """history(), polled until it has at least `expected_count` rows (the history syncer
        writes about once a second). Returns the rows seen at the deadline otherwise, so
        tests assert on them; expected_count=1 with a short timeout checks "nothing stored"."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.history(host, key, value_type)
            if len(rows) >= expected_count or time.monotonic() >= deadline:
                return rows
            time.sleep(0.2)

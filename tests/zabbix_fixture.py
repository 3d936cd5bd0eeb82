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
import glob
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
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
                   server_conf=env["ZBX_SERVER_CONF"], tls_dir=env.get("ZBX_TLS_DIR"),
                   psk_identity=env.get("ZBX_PSK_IDENTITY"))


class Testbed:
    """A running testbed: trapper at server:port, JSON-RPC API at api_url."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, server: str, port: int, api_url: str, user: str, password: str,
                 server_conf: str, tls_dir: str | None = None, psk_identity: str | None = None):
        self.tls_dir = tls_dir
        self.psk_identity = psk_identity
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

    # -- stopping and starting the server (outage tests) ----------------------------------
    def _conf_value(self, name: str) -> str:
        for line in Path(self.server_conf).read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1].strip()
        raise LookupError(f"{name} not in {self.server_conf}")

    def server_pid(self) -> int | None:
        try:
            pid = int(Path(self._conf_value("PidFile")).read_text().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def stop_server(self, timeout: float = 60) -> None:
        """SIGTERM zabbix_server and wait until it is gone (its trapper port is closed)."""
        pid = self.server_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise TimeoutError(f"zabbix_server {pid} did not stop within {timeout} s")

    def start_server(self, timeout: float = 60) -> None:
        """Start zabbix_server again (as start-zabbix.sh does) and wait for its trapper."""
        if self.server_pid() is None:
            subprocess.run(["zabbix_server", "-c", self.server_conf], check=True, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sender().send_value("__probe__", "probe", "1")
                return
            except Exception:
                time.sleep(0.2)
        raise TimeoutError(f"zabbix_server trapper not answering {timeout} s after start")

    # -- hosts with discovery --------------------------------------------------------------
    def create_lld_host(self, host: str, rule_key: str, prototype_key: str,
                        value_type: str = "uint", lifetime: str = "1d") -> str:
        """A new host with a trapper discovery rule and one trapper item prototype."""
        api = self.api()
        hostid = self.ensure_host(host)
        rule = api.discoveryrule.create(hostid=hostid, name=rule_key, key_=rule_key, type=TRAPPER,
                                        lifetime=lifetime)["itemids"][0]
        api.itemprototype.create(hostid=hostid, ruleid=rule, name=prototype_key, key_=prototype_key,
                                 type=TRAPPER, value_type=VALUE_TYPES[value_type])
        self.reload_config_cache()
        return hostid

    def delete_host(self, host: str) -> None:
        api = self.api()
        found = api.host.get(filter={"host": [host]}, output=["hostid"])
        if found:
            api.host.delete(*[h["hostid"] for h in found])

    # -- an active proxy (tests/zabbix/start-proxy.sh) -----------------------------------
    def start_proxy(self, name: str = "ci-proxy", port: int = 10061, host: str = "web-proxy",
                    timeout: float = 120) -> tuple[str, int]:
        """Start a zabbix-proxy-sqlite3 in active mode, register it on the server, make `host`
        monitored by it; returns the proxy's trapper (address, port) once it accepts values
        for `host` (i.e. it has pulled the configuration)."""
        proc = subprocess.run(["bash", str(START_SCRIPT.parent / "start-proxy.sh")],
                              env={**os.environ, "ZBX_PROXY_NAME": name,
                                   "ZBX_PROXY_PORT": str(port), "ZBX_BASE": str(testbed_base())},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"start-proxy.sh failed: {proc.stdout}{proc.stderr}")
        api = self.api()
        found = api.proxy.get(filter={"host": [name]}, output=["proxyid"])
        proxyid = found[0]["proxyid"] if found else api.proxy.create(host=name, status=5)["proxyids"][0]
        hostid = self.ensure_host(host)
        api.host.update(hostid=hostid, proxy_hostid=proxyid)
        self.ensure_trapper_items(host, {"ci.ready": "text"})
        self.reload_config_cache()
        self.wait_proxy_accepts(host, "ci.ready", port, timeout)
        return "127.0.0.1", port

    def wait_proxy_accepts(self, host: str, key: str, port: int, timeout: float = 120,
                           value: str = "probe") -> None:
        """Until the proxy at 127.0.0.1:port accepts a value (`value`, clock now) for host:key."""
        deadline = time.monotonic() + timeout
        proxy = Sender(server="127.0.0.1", port=port)
        while time.monotonic() < deadline:
            try:
                if proxy.send_value(host, key, value).processed == 1:
                    return
            except Exception:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"proxy 127.0.0.1:{port} does not accept {host}:{key} after {timeout} s")

    def delete_named(self, prefix: str) -> None:
        """Delete the hosts, templates, host groups and proxies whose names start with
        `prefix` (what one test file created on the shared server)."""
        api = self.api()
        for method, field, id_field in ((api.host, "host", "hostid"),
                                        (api.template, "host", "templateid"),
                                        (api.hostgroup, "name", "groupid"),
                                        (api.proxy, "host", "proxyid")):
            found = method.get(search={field: prefix}, startSearch=True, output=[id_field])
            if found:
                method.delete(*[f[id_field] for f in found])

    def items_of(self, host: str, pattern: str) -> list[str]:
        return [i["key_"] for i in self.api().item.get(host=host, search={"key_": pattern},
                                                        output=["key_"])]


# -- the stand-alone sender (python -m plogd.outputs.zabbix) -----------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def start_sender(state_dir: Path, server: str | None, port: int | None, *args: str,
                 python: str | None = None) -> tuple[subprocess.Popen, Path]:
    """`python -m plogd.outputs.zabbix` following state_dir/results.jsonl; its log goes to
    state_dir/send-N.log (returned). server None: not passed (e.g. from --agent-config)."""
    n = len(list(state_dir.glob("send-*.log")))
    log = state_dir / f"send-{n}.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "plogd.outputs.zabbix", "--results",
         str(state_dir / "results.jsonl"), "--state", str(state_dir / "send.json"),
         *(["--server", server, "--port", str(port)] if server else []), *args],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    return proc, log


def stop_sender(proc: subprocess.Popen, timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def append_records(path: Path, records: list[dict]) -> None:
    """As the writer does: append whole lines, fsync."""
    with open(path, "ab") as f:
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
        f.flush()
        os.fsync(f.fileno())


def sender_offset(state_dir: Path) -> int:
    try:
        return json.loads((state_dir / "output.zabbix.json").read_text())["cursor"]["offset"]
    except (OSError, ValueError, KeyError):
        return 0


def wait_sent(state_dir: Path, timeout: float = 60) -> bool:
    """Until the sender's offset reaches the end of the result file."""
    deadline = time.monotonic() + timeout
    size = (state_dir / "results.jsonl").stat().st_size
    while time.monotonic() < deadline:
        if sender_offset(state_dir) >= size:
            return True
        time.sleep(0.2)
    return False


def python313() -> str:
    """An interpreter >= 3.13 with zabbix-utils (PSK needs Python 3.13's ssl): this one, or
    $PLOGD_PYTHON313, or a venv made once from pyenv's 3.13 under the testbed directory."""
    if sys.version_info >= (3, 13):
        return sys.executable
    if os.environ.get("PLOGD_PYTHON313"):
        return os.environ["PLOGD_PYTHON313"]
    venv = testbed_base() / "py313"
    python = venv / "bin" / "python"
    if not python.exists():
        found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[3-9]*/bin/python3")))
        if not found:
            raise RuntimeError("no Python >= 3.13 for the PSK test: install one (pyenv install "
                               "3.13) or set PLOGD_PYTHON313")
        subprocess.run([found[-1], "-m", "venv", str(venv)], check=True, timeout=120)
    # plogd runs from the checkout (PYTHONPATH) with what it needs installed here: again
    # whenever pyproject.toml's dependencies change
    with open(Path(__file__).resolve().parent.parent / "pyproject.toml", "rb") as f:
        needs = tomllib.load(f)["project"]["dependencies"]
    installed = venv / "plogd-requirements.txt"
    if not installed.exists() or installed.read_text().splitlines() != needs:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *needs], check=True, timeout=600)
        installed.write_text("\n".join(needs))
    return str(python)

"""`plogd zabbix provision`: make a Zabbix server ready for the values of a configuration,
through the API (zabbix-utils' ZabbixAPI):

1. import the configuration's template (plogd.outputs.zabbix.template): what is missing is created,
   what differs updated; what the server has and the template not is deleted only with
   --prune (`configuration.importcompare` tells what an import would change, so a dry run
   and a second run can say so);
2. create the host group and the host (plogd's host name: zabbix.host, the agent's Hostname,
   or this machine's name) linked to the template, or link the template to an existing host,
   keeping its other templates;
3. have the host monitored by a proxy (--proxy NAME);
4. with --wait, wait until the server has stored a first value of the host (plogd running).

Running it again changes nothing and says so. The token or password comes from a file or the
environment, never from the command line, and is never printed.
"""
from __future__ import annotations

import json
import os
import time
from http.client import HTTPException
from collections import Counter
from dataclasses import dataclass
from collections.abc import Callable
from urllib.parse import urlsplit

import yaml
from zabbix_utils import ZabbixAPI
from zabbix_utils.exceptions import ModuleBaseException

from ... import config as config_module
from ...config import ConfigError
from .template import render_template

DEFAULT_GROUP = "plogd"
DEFAULT_WAIT = 300
# the parts of a template that --prune may delete when the template no longer has them
PRUNABLE = ("items", "discoveryRules", "triggers", "graphs", "httptests", "valueMaps",
            "templateDashboards")


# what zabbix-utils raises for a refusal (APIRequestError), an unreachable URL or an answer
# that is not JSON-RPC (ProcessingError), a version it does not support (APINotSupported)
API_ERRORS = (ModuleBaseException, OSError, ValueError, HTTPException)


class ProvisionError(ConfigError):
    """One line for the user: what went wrong with the Zabbix API and what to do."""


@dataclass
class Login:
    url: str
    token: str | None = None
    user: str | None = None
    password: str | None = None


@dataclass
class Change:
    text: str                        # "create host web01 in group plogd, template ..."
    apply: Callable[[], None]


def add_arguments(p) -> None:
    p.description = ("Import the configuration's template into Zabbix, create the host "
                     "(or link the template to it) and say what changed. The token or "
                     "password is read from a file or the environment (ZABBIX_URL, "
                     "ZABBIX_TOKEN, ZABBIX_USER, ZABBIX_PASSWORD), never from the command line.")
    p.add_argument("-c", "--config", default=config_module.DEFAULT_PATH,
                   help="plogd's configuration (default: %(default)s)")
    p.add_argument("--url", help="the Zabbix frontend or API URL (default: $ZABBIX_URL)")
    p.add_argument("--token-file", metavar="FILE", help="a file holding an API token "
                   "(default: $ZABBIX_TOKEN)")
    p.add_argument("--user", help="log in as this user (default: $ZABBIX_USER)")
    p.add_argument("--password-file", metavar="FILE",
                   help="a file holding the user's password (default: $ZABBIX_PASSWORD)")
    p.add_argument("--name", help="the template's name (default: the generated one)")
    p.add_argument("--group", default=DEFAULT_GROUP,
                   help="host group of a new host (default: %(default)s)")
    p.add_argument("--proxy", metavar="NAME", help="have the host monitored by this proxy")
    p.add_argument("--prune", action="store_true",
                   help="delete what the template on the server has and the new one not")
    p.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    p.add_argument("--wait", nargs="?", type=float, const=DEFAULT_WAIT, metavar="SECONDS",
                   help="then wait until the server has a first value of the host "
                        f"(default {DEFAULT_WAIT} s; plogd must be running)")


def run(args, environ=os.environ) -> int:
    config = config_module.load(args.config)
    if config.zabbix is None:
        raise ProvisionError(f"{config.path}: no zabbix: section, so plogd sends nothing; add "
                             "one (server, host) before provisioning")
    text = render_template(config, name=args.name)
    login = login_from(args, environ)
    api = connect(login)
    try:
        changes, notes = plan(api, text, config.zabbix.host, args.group, args.proxy, args.prune)
        where = f"{login.url}, host {config.zabbix.host}"
        for note in notes:
            print(f"note: {note}")
        if not changes:
            print(f"{where}: nothing to change")
        elif args.dry_run:
            print(f"{where}: dry run, nothing changed; would:")
            for change in changes:
                print(f"  {change.text}")
        else:
            print(f"{where}:")
            for change in changes:
                change.apply()
                print(f"  {change.text}: done")
        if args.wait is not None and not args.dry_run:
            return wait_first_value(api, config.zabbix.host, template_keys(text), args.wait)
        return 0
    except API_ERRORS as e:     # an API refusal in the middle: one line, no traceback
        raise ProvisionError(f"the Zabbix API at {login.url}: {_api_message(e)}") from None


# -- logging in -----------------------------------------------------------------------------

def login_from(args, environ) -> Login:
    """URL and credentials from the options, else the environment: a token (file or
    ZABBIX_TOKEN), else a user and a password (file or ZABBIX_PASSWORD)."""
    url = args.url or environ.get("ZABBIX_URL")
    if not url:
        raise ProvisionError("no Zabbix URL: give --url https://zabbix.example.com (or set "
                             "ZABBIX_URL)")
    if "://" not in url:
        url = "http://" + url           # as zabbix-utils does
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ProvisionError(f"the Zabbix URL {url!r}: expected the frontend's address, "
                             "http(s)://HOST[:PORT][/PATH], e.g. https://zabbix.example.com/zabbix")
    token = _secret(args.token_file, "--token-file") if args.token_file else None
    user = args.user or environ.get("ZABBIX_USER")
    if token is None and not (args.user or args.password_file):
        token = environ.get("ZABBIX_TOKEN") or None
    if token is not None:
        if args.user or args.password_file:
            raise ProvisionError("give a token (--token-file) or a user (--user, "
                                 "--password-file), not both")
        return Login(url, token=token)
    if not user:
        raise ProvisionError("no credentials: give --token-file FILE (or ZABBIX_TOKEN), or "
                             "--user NAME with --password-file FILE (or ZABBIX_USER, "
                             "ZABBIX_PASSWORD)")
    password = (_secret(args.password_file, "--password-file") if args.password_file
                else environ.get("ZABBIX_PASSWORD"))
    if not password:
        raise ProvisionError(f"no password for user {user}: give --password-file FILE (or "
                             "set ZABBIX_PASSWORD)")
    return Login(url, user=user, password=password)


def _secret(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except OSError as e:
        raise ProvisionError(f"{option} {path}: {e.strerror}") from None
    if not value:
        raise ProvisionError(f"{option} {path}: the file is empty")
    return value


def connect(login: Login) -> ZabbixAPI:
    """A logged-in ZabbixAPI; a refused login or an unreachable URL is a ProvisionError."""
    try:
        api = ZabbixAPI(url=login.url)
    except API_ERRORS as e:
        raise ProvisionError(f"cannot reach the Zabbix API at {login.url}: {_api_message(e)} "
                             "(the frontend's URL, e.g. https://zabbix.example.com/zabbix)"
                             ) from None
    try:
        if login.token is not None:
            api.login(token=login.token)
            api.host.get(countOutput=True, limit=1)     # a token is only checked when used
        else:
            api.login(user=login.user, password=login.password)
    except API_ERRORS as e:
        who = "the token" if login.token is not None else f"user {login.user}"
        raise ProvisionError(f"the Zabbix API at {api.url} refused {who}: "
                             f"{_api_message(e)}") from None
    return api


def _api_message(e: Exception) -> str:
    """The API's own words (`message data`), without the request zabbix-utils appends."""
    data = getattr(e, "data", None)
    if data is not None:
        return f"{getattr(e, 'message', '')} {data}".strip()
    return " ".join(str(part) for part in e.args) or type(e).__name__


# -- what to change -------------------------------------------------------------------------

def template_name(text: str) -> str:
    return yaml.safe_load(text)["zabbix_export"]["templates"][0]["template"]


def template_keys(text: str) -> list[str]:
    """The keys of the template's plain items."""
    template = yaml.safe_load(text)["zabbix_export"]["templates"][0]
    return [item["key"] for item in template.get("items", [])]


def import_rules(prune: bool, version) -> dict:
    on = {"createMissing": True, "updateExisting": True}
    rules = {"templates": on, **{kind: {**on, "deleteMissing": prune} for kind in PRUNABLE}}
    if version < 6.2:
        rules["groups"] = {"createMissing": True}
    else:                           # 6.2 split host groups and template groups
        rules["template_groups"] = rules["host_groups"] = {"createMissing": True}
    return rules


def count_changes(diff) -> Counter:
    """{(kind, "added"|"updated"|"removed"): n} of a configuration.importcompare answer,
    nested parts (a template's items, a rule's prototypes) counted by their own kind.

    Not changes: an entry "updated" to what it was up to the order of its lists (the server
    answers with its own order, e.g. of dashboard widgets), and an object "removed" at one
    place and "added" unchanged at another (the server nests a trigger prototype of one item
    prototype under that prototype, wherever the export put it)."""
    entries = list(_entries(diff))
    removed = {_canonical(before) for _, op, before, _ in entries if op == "removed"}
    added = {_canonical(after) for _, op, _, after in entries if op == "added"}
    moved = removed & added
    counts: Counter[tuple[str, str]] = Counter()
    for kind, op, before, after in entries:
        if op == "updated" and _canonical(before) == _canonical(after):
            continue
        if _canonical(before if op == "removed" else after) in moved:
            continue
        counts[(kind, op)] += 1
    return counts


def _entries(diff):
    """(kind, operation, before, after) of every entry of an importcompare answer, nested
    ones included."""
    for kind, operations in (diff or {}).items():
        for operation, entries in operations.items():
            for entry in entries:
                yield kind, operation, entry.get("before"), entry.get("after")
                yield from _entries({k: v for k, v in entry.items()
                                     if k not in ("before", "after")})


ORDERED = ("preprocessing", "parameters")      # lists whose order means something


def _canonical(value) -> str:
    def normal(v, ordered=False):
        if isinstance(v, dict):
            return {k: normal(x, k in ORDERED) for k, x in v.items()}
        if isinstance(v, list):
            items = [normal(x) for x in v]
            return items if ordered else sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
        return v
    return json.dumps(normal(value), sort_keys=True)


def describe(counts: Counter, operation: str) -> str:
    """'3 items, 1 discovery rule' for the entries of `counts` with that operation."""
    parts = []
    for (kind, op), n in counts.items():          # in the order of the answer
        if op == operation:
            name = kind.replace("_", " ").rstrip("s")
            parts.append(f"{n} {name}{'s' if n != 1 else ''}")
    return ", ".join(parts)


def plan(api, text: str, host: str, group: str, proxy: str | None,
         prune: bool) -> tuple[list[Change], list[str]]:
    """The changes that would make the server ready for `host`, in order, and notes."""
    name = template_name(text)
    changes, notes = [], []
    compare = api.configuration.importcompare(format="yaml", source=text,
                                              rules=import_rules(True, api.version))
    counts = count_changes(compare)
    done = [f"{describe(counts, op)} {op}" for op in ("added", "updated")
            if describe(counts, op)]
    removed = describe(counts, "removed")
    if prune and removed:
        done.append(f"{removed} removed")
    elif removed:
        notes.append(f"the server's template {name} has {removed} that the configuration no "
                     "longer has: kept (--prune deletes them)")
    if done:
        rules = import_rules(prune, api.version)
        changes.append(Change(f"import template {name}: {'; '.join(done)}", lambda: (
            api.configuration.import_(format="yaml", source=text, rules=rules))))

    proxy_field, proxyid = _proxy(api, proxy) if proxy else (None, None)
    found = api.host.get(filter={"host": [host]}, selectParentTemplates=["templateid", "host"],
                         output=["hostid", "proxy_hostid" if api.version < 7.0 else "proxyid"])

    def templateid() -> str:      # known only after the import when the template is new
        return api.template.get(filter={"host": [name]}, output=["templateid"])[0]["templateid"]

    if not found:
        groups = api.hostgroup.get(filter={"name": [group]}, output=["groupid"])
        if not groups:
            changes.append(Change(f"create host group {group}",
                                  lambda: api.hostgroup.create(name=group)))

        def create_host():
            groupid = api.hostgroup.get(filter={"name": [group]}, output=["groupid"])[0]["groupid"]
            extra = _proxy_fields(api, proxy_field, proxyid) if proxy else {}
            api.host.create(host=host, groups=[{"groupid": groupid}],
                            templates=[{"templateid": templateid()}], **extra)
        by = f", monitored by proxy {proxy}" if proxy else ""
        changes.append(Change(f"create host {host} in group {group} with template {name}{by}",
                              create_host))
        return changes, notes

    hostid = found[0]["hostid"]
    linked = [t["host"] for t in found[0]["parentTemplates"]]
    if name not in linked:
        others = f" (keeping {', '.join(sorted(linked))})" if linked else ""
        changes.append(Change(f"link template {name} to host {host}{others}", lambda: (
            api.host.massadd(hosts=[{"hostid": hostid}],
                             templates=[{"templateid": templateid()}]))))
    if proxy and str(found[0].get(proxy_field)) != str(proxyid):
        assert proxy_field is not None and proxyid is not None     # _proxy gave both
        changes.append(Change(f"have host {host} monitored by proxy {proxy}", lambda: (
            api.host.update(hostid=hostid, **_proxy_fields(api, proxy_field, proxyid)))))
    return changes, notes


def _proxy(api, name: str) -> tuple[str, str]:
    """(the host's field naming its proxy, the proxy's id); an unknown proxy is an error
    listing the known ones."""
    if api.version < 7.0:
        field, name_field, id_field = "proxy_hostid", "host", "proxyid"
    else:
        field, name_field, id_field = "proxyid", "name", "proxyid"
    proxies = api.proxy.get(output=[id_field, name_field])
    for proxy in proxies:
        if proxy[name_field] == name:
            return field, proxy[id_field]
    known = ", ".join(sorted(p[name_field] for p in proxies)) or "none"
    raise ProvisionError(f"--proxy: no proxy named {name!r} on the server; its proxies: {known}")


def _proxy_fields(api, field: str, proxyid: str) -> dict:
    return {field: proxyid} if api.version < 7.0 else {field: proxyid, "monitored_by": 1}


# -- waiting for the first value ------------------------------------------------------------

def wait_first_value(api, host: str, keys: list[str], timeout: float,
                     clock=time.monotonic, sleep=time.sleep) -> int:
    """Poll the host's items of the template until one has a value stored; 0, or 1 after
    `timeout` seconds."""
    started = clock()
    print(f"waiting up to {timeout:.0f} s for a first value of host {host} ...", flush=True)
    while True:
        items = api.item.get(host=host, filter={"key_": keys}, output=["key_", "lastclock"])
        stored = [i for i in items if int(i["lastclock"]) > 0]
        if stored:
            first = min(stored, key=lambda i: int(i["lastclock"]))
            when = time.strftime("%H:%M:%S", time.localtime(int(first["lastclock"])))
            print(f"first value: {first['key_']} at {when}, {clock() - started:.0f} s after "
                  "provisioning")
            return 0
        if clock() - started >= timeout:
            print(f"no value of host {host} after {timeout:.0f} s: is plogd running "
                  "(systemctl status plogd) and sending to this server (plogd check)?")
            return 1
        sleep(2)

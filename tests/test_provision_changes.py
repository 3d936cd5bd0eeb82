"""The pure parts of `plogd zabbix provision`: what an importcompare answer counts as a
change, and where the URL and credentials come from (tests/integration/test_provision.py runs
it against the real server)."""
import re
from argparse import Namespace

import pytest

from plogd.outputs.zabbix.provision import Login, ProvisionError, count_changes, describe, login_from

# configuration.importcompare of Zabbix 6.0.14: a second import of the same template
UNCHANGED = {"templates": {"updated": [{
    "before": {"uuid": "0123", "template": "t", "name": "t", "groups": [{"name": "g"}]},
    "after": {"uuid": "0123", "template": "t", "name": "t", "groups": [{"name": "g"}]}}]}}
CHANGED = {"templates": {"updated": [{
    "before": {"template": "t"}, "after": {"template": "t"},
    "items": {"added": [{"after": {"key": "a"}}, {"after": {"key": "b"}}],
              "removed": [{"before": {"key": "c"}}],
              "updated": [{"before": {"key": "d", "units": ""}, "after": {"key": "d", "units": "s"}}]},
    "discovery_rules": {"updated": [{
        "before": {"key": "r"}, "after": {"key": "r"},
        "item_prototypes": {"added": [{"after": {"key": "p[{#X}]"}}]}}]}}]},
    "groups": {"added": [{"after": {"name": "g2"}}]}}


def test_an_unchanged_import_counts_no_change():
    assert count_changes(UNCHANGED) == {}
    assert count_changes([]) == {}          # the API answers [] when there is nothing at all


def test_nested_changes_are_counted_by_their_own_kind():
    counts = count_changes(CHANGED)
    assert describe(counts, "added") == "2 items, 1 item prototype, 1 group"
    assert describe(counts, "updated") == "1 item"
    assert describe(counts, "removed") == "1 item"


def args(**given):
    return Namespace(**{"url": None, "token_file": None, "user": None, "password_file": None,
                        **given})


def test_credentials_from_files_and_the_environment(tmp_path):
    token = tmp_path / "token"
    token.write_text("abc123\n")
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    u, e = "https://u", "http://e"
    assert login_from(args(url=u, token_file=str(token)), {}) == Login(u, token="abc123")
    assert login_from(args(url=u, user="me", password_file=str(password)), {}) == \
        Login(u, user="me", password="s3cret")
    env = {"ZABBIX_URL": "e", "ZABBIX_USER": "eu", "ZABBIX_PASSWORD": "ep", "ZABBIX_TOKEN": "et"}
    assert login_from(args(), env) == Login(e, token="et")          # a token first
    assert login_from(args(user="me"), env) == Login(e, user="me", password="ep")
    assert login_from(args(), {k: v for k, v in env.items() if k != "ZABBIX_TOKEN"}) == \
        Login(e, user="eu", password="ep")


@pytest.mark.parametrize("given,env,message", [
    ({}, {}, "no Zabbix URL: give --url"),
    ({"url": "u"}, {}, "no credentials: give --token-file FILE"),
    ({"url": "u", "user": "me"}, {}, "no password for user me: give --password-file FILE"),
    ({"url": "u", "token_file": "/nonexistent"}, {}, "--token-file /nonexistent: No such file"),
    ({"url": "not a url", "user": "me"}, {"ZABBIX_PASSWORD": "p"}, "the Zabbix URL 'http://not a url': "
     "expected the frontend's address, http(s)://HOST[:PORT][/PATH]"),
    ({"url": "ftp://zbx"}, {}, "the Zabbix URL 'ftp://zbx': expected"),
])
def test_missing_url_or_credentials_are_one_line(given, env, message):
    with pytest.raises(ProvisionError, match="^" + re.escape(message)):
        login_from(args(**given), env)


def test_a_reordered_list_or_a_moved_object_is_no_change():
    """What Zabbix 6.0.14 answered for a second import of a generated template: its dashboard
    with the widgets in another order, a trigger prototype of one item prototype nested under
    that prototype on the server but beside it in the export."""
    widget_a = {"type": "GRAPH_CLASSIC", "name": "requests", "width": "12"}
    widget_b = {"type": "GRAPH_CLASSIC", "name": "bytes", "width": "12", "y": "5"}
    trigger = {"uuid": "4190", "expression": "last(/t/plogd.missing[{#INPUT}])>0", "name": "missing"}
    diff = {"templates": {"updated": [{
        "before": {"template": "t"}, "after": {"template": "t"},
        "dashboards": {"updated": [{"before": {"name": "plogd", "pages": [{"widgets": [widget_b, widget_a]}]},
                                    "after": {"name": "plogd", "pages": [{"widgets": [widget_a, widget_b]}]}}]},
        "discovery_rules": {"updated": [{
            "before": {"key": "plogd.inputs"}, "after": {"key": "plogd.inputs"},
            "trigger_prototypes": {"added": [{"after": trigger}]},
            "item_prototypes": {"updated": [{
                "before": {"key": "plogd.missing[{#INPUT}]"}, "after": {"key": "plogd.missing[{#INPUT}]"},
                "trigger_prototypes": {"removed": [{"before": trigger}]}}]}}]}}]}}
    assert count_changes(diff) == {}
    steps = [{"type": "CHANGE_PER_SECOND"}, {"type": "MULTIPLIER", "parameters": ["8"]}]
    reordered = {"items": {"updated": [{"before": {"key": "a", "preprocessing": steps},
                                        "after": {"key": "a", "preprocessing": steps[::-1]}}]}}
    assert describe(count_changes(reordered), "updated") == "1 item"     # an order that matters

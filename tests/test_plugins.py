"""The plugin registry (plogd.plugins) and `plogd plugins`: the built-in formats come from
plogd's own entry points, a third party's from theirs; a broken plugin or one under a taken
name is left out, named once, and never stops plogd. The plugins here are real
distributions (a .dist-info with entry_points.txt) put on sys.path, as pip would install
them; tests/test_haproxy_plugin.py installs the example of plugins/ with pip."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from plogd import config as config_module
from plogd import formats, plugins
from plogd.config import ConfigError
from plogd.formats import FormatError, get_format

GOOD_FORMAT = '''
from plogd.formats import LogFormat, TimeLayout
def kv():
    return LogFormat.from_regex("kv", r"t=(?P<t>\\S+) status=(?P<status>\\d+)", "t",
                                TimeLayout("iso8601"))
'''


def make_dist(root, name, entry_points, modules=None, version="1.0"):
    """A distribution as pip leaves it in site-packages: its modules and a .dist-info."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{n} = {target}\n" for n, target in points.items())
        for group, points in entry_points.items()))
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path to install distributions into; the registry read afresh."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(formats, "_compiled", {})
    plugins.entries.cache_clear()
    yield tmp_path
    plugins.entries.cache_clear()
    for module in [m for m in sys.modules if m.startswith("plug_")]:
        del sys.modules[module]


def test_the_built_in_formats_come_from_plogds_own_entry_points(site):
    found = {e.name: e for e in plugins.entries(plugins.FORMATS) if e.builtin}
    assert set(found) == {"nginx_combined", "nginx_main", "nginx_timed", "apache_common",
                          "apache_combined", "apache_vhost_combined", "nginx_error",
                          "apache_error", "caddy_json", "traefik_json", "nginx_json"}
    assert all(e.distribution == "plogd" and e.error is None for e in found.values())
    assert found["nginx_timed"].target == "plogd.formats.builtin:nginx_timed"
    assert get_format("nginx_timed").fields["request_time"] == "float"
    assert get_format("nginx_error").continuation       # travels with the format


def test_a_plugin_format_is_named_in_a_config_as_a_built_in_is(site, tmp_path):
    make_dist(site, "plug-kv", {"plogd.formats": {"kv": "plug_kv:kv"}}, {"plug_kv": GOOD_FORMAT})
    assert "kv" in formats.format_names()
    entry = plugins.entry_of(plugins.FORMATS, "kv")
    assert (entry.distribution, entry.version, entry.builtin) == ("plug-kv", "1.0", False)
    assert get_format("kv").parse(b"t=2024-01-02T10:00:00Z status=503") == {
        "t": "2024-01-02T10:00:00Z", "status": 503, "timestamp": 1704189600,
        "status_class": "5xx"}
    config = config_module.from_data("x.yaml", {"state_dir": str(tmp_path / "s"), "inputs": [
        {"name": "kv", "path": "/dev/null", "format": "kv",
         "metrics": [{"key": "kv.status[{status_class}]", "type": "count",
                      "by": "status_class"}]}]})
    assert config.inputs[0].format is get_format("kv")


def test_a_broken_plugin_is_named_once_and_the_others_still_run(site, caplog):
    make_dist(site, "plug-broken", {"plogd.formats": {
        "missing": "plug_nowhere:fmt",            # its module is not there
        "raising": "plug_raises:fmt",             # its module raises on import
        "notcallable": "plug_value:fmt"}},        # not a factory
        {"plug_raises": "raise RuntimeError('boom')\n", "plug_value": "fmt = 42\n"})
    make_dist(site, "plug-kv", {"plogd.formats": {"kv": "plug_kv:kv"}}, {"plug_kv": GOOD_FORMAT})
    with caplog.at_level(logging.WARNING, "plogd"):
        names = formats.format_names()
        formats.format_names()
        get_format("nginx_combined")
    assert "kv" in names and "nginx_combined" in names
    assert not {"missing", "raising", "notcallable"} & set(names)
    errors = {e.name: e.error for e in plugins.entries(plugins.FORMATS) if e.error}
    assert "ModuleNotFoundError" in errors["missing"]
    assert errors["raising"] == "cannot be loaded: RuntimeError: boom"
    assert "42 is not callable" in errors["notcallable"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3                             # once each, however often asked
    assert any("raising (plogd.formats, plug-broken 1.0)" in w for w in warnings)
    assert not any(r.exc_info for r in caplog.records)    # no traceback


def test_a_factory_that_fails_is_a_config_error_naming_the_plugin(site, tmp_path):
    make_dist(site, "plug-bad", {"plogd.formats": {"bad": "plug_bad:bad", "odd": "plug_bad:odd"}},
              {"plug_bad": "def bad():\n    raise KeyError('x')\ndef odd():\n    return 'no'\n"})
    with pytest.raises(FormatError, match=r"format bad \(plogd.formats, plug-bad 1.0\) "
                                          r"failed: KeyError"):
        get_format("bad")
    with pytest.raises(FormatError, match="gave 'no', not a plogd.formats.LogFormat"):
        get_format("odd")
    path = tmp_path / "p.yaml"
    path.write_text("inputs:\n  - name: a\n    path: /dev/null\n    format: bad\n"
                    "    metrics: [{key: a.lines, type: count}]\n")
    with pytest.raises(ConfigError, match=r"p.yaml:4: inputs\[0\].format: .*plug-bad 1.0"):
        config_module.load(str(path))


def test_a_plugin_under_a_built_in_name_is_refused(site):
    make_dist(site, "plug-clash", {"plogd.formats": {"nginx_combined": "plug_kv:kv"}},
              {"plug_kv": GOOD_FORMAT})
    clashing = [e for e in plugins.entries(plugins.FORMATS) if e.name == "nginx_combined"]
    assert [(e.builtin, e.error is None) for e in clashing] == [(True, True), (False, False)]
    assert "is a built-in's; refused" in clashing[1].error
    assert get_format("nginx_combined").name == "nginx_combined"     # the built-in's


def test_two_plugins_under_one_name_are_both_refused(site, monkeypatch):
    for dist in ("plug-one", "plug-two"):
        make_dist(site / dist, dist, {"plogd.formats": {"kv": "plug_kv:kv"}},
                  {"plug_kv": GOOD_FORMAT})
        monkeypatch.syspath_prepend(str(site / dist))
    refused = [e for e in plugins.entries(plugins.FORMATS) if e.name == "kv"]
    assert len(refused) == 2 and all("both refused" in e.error for e in refused)
    assert "kv" not in formats.format_names()


def test_reserved_names_are_refused(site):
    make_dist(site, "plug-json", {"plogd.formats": {"json": "plug_kv:kv"}},
              {"plug_kv": GOOD_FORMAT})
    entry = next(e for e in plugins.entries(plugins.FORMATS) if e.name == "json")
    assert "not allowed" in entry.error and "json" not in formats.format_names()


OUTPUTS = '''
from plogd.outputs.base import Output
class Stdout(Output):
    type = "stdout"
    async def send(self, records):
        return []
class Misnamed(Stdout):
    type = "other"
class NotAnOutput:
    pass
'''


def test_outputs_are_output_subclasses_under_their_type(site):
    make_dist(site, "plug-out", {"plogd.outputs": {
        "stdout": "plug_out:Stdout", "misnamed": "plug_out:Misnamed",
        "plain": "plug_out:NotAnOutput"}}, {"plug_out": OUTPUTS})
    types = plugins.output_types()
    assert types["stdout"].__name__ == "Stdout" and "misnamed" not in types
    errors = {e.name: e.error for e in plugins.entries(plugins.OUTPUTS) if e.error}
    assert errors["misnamed"] == "its class says type 'other', its entry point 'misnamed'"
    assert "is not a subclass of plogd.outputs.base.Output" in errors["plain"]


def _plogd(*args, path: str):
    root = str(Path(plugins.__file__).parents[1])       # this plogd, wherever pytest runs
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([path, root])}
    return subprocess.run([sys.executable, "-m", "plogd", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_plogd_plugins_lists_built_ins_plugins_and_broken_ones(site):
    make_dist(site, "plug-kv", {"plogd.formats": {"kv": "plug_kv:kv", "gone": "plug_gone:x"}},
              {"plug_kv": GOOD_FORMAT}, version="2.5")
    done = _plogd("plugins", path=str(site))
    assert done.returncode == 1, done.stderr             # one is not used
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "plogd.formats:" in lines
    assert any(line.split()[:2] == ["kv", "plug_kv:kv"] and "(plug-kv 2.5, plugin)" in line
               for line in lines)
    assert any(line.split()[:2] == ["nginx_timed", "plogd.formats.builtin:nginx_timed"]
               and "(plogd " in line and "built-in)" in line for line in lines)
    gone = lines.index(next(line for line in lines if line.split()[0] == "gone"))
    assert "NOT USED: cannot be loaded: ModuleNotFoundError" in lines[gone + 1]
    import json
    listed = json.loads(_plogd("plugins", "--json", path=str(site)).stdout)
    assert {"group": "plogd.formats", "name": "kv", "target": "plug_kv:kv",
            "distribution": "plug-kv", "version": "2.5", "builtin": False,
            "error": None} in listed

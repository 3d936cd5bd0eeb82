"""The YAML configuration: loading with line numbers, validation, clear errors.

Every mistake stops start-up with one message that names the file, the line, the key, what
was found and what is allowed (with the closest name for a typo), e.g.

    /etc/plogd/plogd.yaml:14: inputs[0].metrics[2].type: found 'avgg'; allowed: count,
    sum, avg, min, max (did you mean 'avg'?)
"""
from __future__ import annotations

import contextlib
import difflib
import gc
import glob
import logging
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .conffile import ConfFileError, read_text
from .errors import ConfigError
from .filters import FilterError, compile_filter
from .formats import (FormatError, LogFormat, compile_apache, compile_nginx, format_names,
                      get_format)
from .formats.detect import read_sample, time_misfit
from .formats.jsonlog import json_format
from .formats.strftime import LocaleError, TimeLayout, system_zone_name, time_names
from .metrics import DEFAULT_TOP, NEEDS_FIELD, NUMERIC_FIELD, TYPES, Alert, Metric
from .stages.parse import Rewrite, input_fields
from .syslog import ListenError, parse_address
from .userregex import compile_user

DEFAULT_PATH = "/etc/plogd/plogd.yaml"
DEFAULT_LATENESS = 10
DEFAULT_MAX_LINE = 64 * 1024
MAX_DEPTH = 50          # YAML nesting: plogd's own schema is 5 levels deep

_log = logging.getLogger("plogd.config")




@dataclass
class ZabbixConfig:
    server: str
    port: int
    host: str
    agent_config: str | None = None
    tls_connect: str = "unencrypted"
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_server_name: str | None = None
    tls_psk_identity: str | None = None
    tls_psk_file: str | None = None
    failed_retry_seconds: int = 600
    lld_member_ttl: int = 7 * 86400
    lld_resend_seconds: int = 3600
    lld_max_members: int = 1000
    batch_size: int = 1000
    spool_max_bytes: int = 1 << 30
    result_rotate_bytes: int = 64 << 20
    # every ServerActive node of agent_config, [[(host, port), ...HA nodes], ...servers];
    # None: server and port alone
    clusters: list | None = None


@dataclass
class OutputConfig:
    """One entry of `outputs:` (or the `zabbix:` section): the output's type and name, its
    own options (the output class's OPTIONS, filled in), and how the runner treats it."""
    type: str
    name: str
    options: dict
    on_full: str = "pause"             # pause (reading waits) | drop_oldest (counted)
    max_backlog: int = 1 << 30         # bytes of the spool not yet taken by this output
    batch_size: int = 1000


@dataclass
class InputConfig:
    name: str
    path: str
    format: LogFormat
    start: str
    lateness: int
    metrics: list[Metric]
    late: str = "drop"                 # drop | current (see README: Windows)
    max_skew: int = 3600               # seconds: farther timestamps are odd (odd_time)
    rewrite: list = field(default_factory=list)   # plogd.stages.parse.Rewrite rules
    time_locale: str | None = None     # apache_format, time_format: the locale of names
    timezone: str | None = None        # time_format: the zone of times without an offset
    continuation: re.Pattern | None = None   # lines it matches continue the line before
    listen: str | None = None          # a syslog input's address (then also its `path`)


@dataclass
class Config:
    path: str
    interval: int
    state_dir: str
    host: str
    zabbix: ZabbixConfig | None
    max_line_length: int
    stall_timeout: int = 30     # --multi: seconds a stage may make no progress (plogd.heartbeat)
    inputs: list[InputConfig] = field(default_factory=list)
    damaged_checkpoint: str = "end"    # where inputs start when the checkpoint is damaged
    outputs: list[OutputConfig] = field(default_factory=list)
    result_rotate_bytes: int = 64 << 20   # the spool's files are rotated past this size

    def input(self, name: str | None) -> InputConfig:
        if name is None:
            return self.inputs[0]
        for candidate in self.inputs:
            if candidate.name == name:
                return candidate
        names = [i.name for i in self.inputs]
        raise ConfigError(f"{self.path}: no input named {name!r}; inputs: {', '.join(names)}"
                          + _did_you_mean(name, names))

    @property
    def result_path(self) -> str:
        return os.path.join(self.state_dir, "results.jsonl")

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.state_dir, "checkpoint.json")


# -- YAML with line numbers -------------------------------------------------------------

class _Map(dict):
    line: int
    key_lines: dict


class _List(list):
    line: int


class _DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one mapping: YAML forbids it, PyYAML keeps the last silently."""


class _TooDeep(yaml.MarkedYAMLError):
    """Nesting beyond MAX_DEPTH (constructing recurses: it would end in RecursionError)."""


_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # C or Python
    """libyaml's parser where PyYAML has it (a 10 MB file: seconds instead of minutes; it
    also bounds flow nesting), and constructors that keep line numbers, refuse duplicate
    keys and bound the nesting (constructing recurses in Python)."""
    _depth = 0

    def construct_object(self, node, deep=False):
        if node.tag == _STR_TAG and isinstance(node, yaml.ScalarNode):
            return node.value       # most nodes: skip the generic path (a 10 MB file: 2x)
        if self._depth >= MAX_DEPTH:
            raise _TooDeep(problem=f"nested more than {MAX_DEPTH} levels deep",
                           problem_mark=node.start_mark)
        self._depth += 1
        try:
            return super().construct_object(node, deep)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        first: dict = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in first:
                    raise _DuplicateKey(
                        problem=f"key {key.value!r} appears a second time in this mapping "
                                f"(first at line {first[key.value]}); one would silently "
                                "replace the other: remove or rename one",
                        problem_mark=key.start_mark)
                first[key.value] = key.start_mark.line + 1
        mapping = _Map(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = first
        return mapping

    def construct_sequence(self, node, deep=False):
        sequence = _List(super().construct_sequence(node, deep=True))
        sequence.line = node.start_mark.line + 1
        return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_sequence)


def _did_you_mean(found, allowed) -> str:
    close = difflib.get_close_matches(str(found), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Section:
    """One mapping of the file, with its place, to read keys from with checks."""

    def __init__(self, file: str, where: str, data, line: int):
        self.file = file
        self.where = where
        self.line = line
        if not isinstance(data, dict):
            self.fail(None, f"found {_show(data)}; expected a mapping of keys")
        self.data = data

    def key_line(self, key: str) -> int:
        return getattr(self.data, "key_lines", {}).get(key, self.line)

    def fail(self, key: str | None, message: str, line: int | None = None) -> NoReturn:
        place = f"{self.where}.{key}" if key and self.where else (key or self.where or "top level")
        raise ConfigError(f"{self.file}:{line or (self.key_line(key) if key else self.line)}: "
                          f"{place}: {message}")

    def check_keys(self, allowed: list[str]) -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(key, f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
                          + _did_you_mean(key, allowed))

    def get(self, key: str, kind, default=..., allowed=None):
        if key not in self.data:
            if default is ...:
                self.fail(None, f"missing required key {key!r}")
            return default
        value = self.data[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            self.fail(key, f"found {_show(value)}; expected a whole number")
        if kind is str and not isinstance(value, str):
            self.fail(key, f"found {_show(value)}; expected a string")
        if allowed is not None and value not in allowed:
            self.fail(key, f"found {_show(value)}; allowed: {', '.join(map(str, allowed))}"
                      + _did_you_mean(value, allowed))
        return value

    def positive(self, key: str, default) -> int:
        value = self.get(key, int, default)
        if value <= 0:
            self.fail(key, f"found {value}; expected a number greater than 0")
        return value

    def sub(self, key: str, data, line_of=None) -> _Section:
        where = f"{self.where}.{key}" if self.where else key
        line = getattr(data, "line", line_of or self.key_line(key))
        return _Section(self.file, where, data, line)


def _show(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'}"
    return repr(value)


# -- the schema -------------------------------------------------------------------------

TOP_KEYS = ["interval", "state_dir", "host", "zabbix", "outputs", "inputs", "max_line_length",
            "stall_timeout", "damaged_checkpoint", "result_rotate_bytes"]
RUNNER_KEYS = ["type", "name", "on_full", "max_backlog", "batch_size"]
INPUT_KEYS = ["name", "path", "format", "log_format", "apache_format", "time_locale", "start",
              "lateness", "late", "max_skew", "rewrite", "metrics", "time_format", "timezone",
              "time_field", "continuation", "fields", "listen"]
REWRITE_KEYS = ["field", "match", "replace"]
DEFAULT_MAX_SKEW = 3600
FORMAT_KEYS = ["format", "log_format", "apache_format"]
METRIC_KEYS = ["key", "name", "type", "field", "by", "where", "q", "of", "top", "alert"]
ALERT_KEYS = ["above", "below", "for", "severity", "q"]
SEVERITIES = ["info", "warning", "average", "high", "disaster"]
_DURATION = re.compile(r"(\d+)([smhdw]?)\Z")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def load(path: str) -> Config:
    with _without_gc():
        try:
            data = yaml.load(read_text(path, "the configuration"), Loader=_Loader)
        except ConfFileError as e:
            raise ConfigError(str(e)) from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = " ".join(str(getattr(e, "problem", None) or e).split())   # one line
            raise ConfigError(f"{path}{line}: not valid YAML: {problem}") from None
        return from_data(path, data if data is not None else _Map())


@contextlib.contextmanager
def _without_gc():
    """A 10 MB file is a million small objects, and every collection of the cyclic GC walks
    all those made so far again (two thirds of the time went there); loading makes no cycles
    worth collecting before it ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def from_data(path: str, data) -> Config:
    top = _Section(path, "", data, getattr(data, "line", 1))
    top.check_keys(TOP_KEYS)
    interval = top.positive("interval", 60)
    host = top.get("host", str, None) or socket.gethostname()   # zabbix.host, if given, wins
    outputs, zabbix = _outputs(top, host)
    host = zabbix.host if zabbix is not None else host
    config = Config(path=path, interval=interval, outputs=outputs,
                    result_rotate_bytes=top.positive(
                        "result_rotate_bytes",
                        zabbix.result_rotate_bytes if zabbix is not None else 64 << 20),
                    state_dir=top.get("state_dir", str, "/var/lib/plogd"),
                    host=host, zabbix=zabbix,
                    max_line_length=top.positive("max_line_length", DEFAULT_MAX_LINE),
                    damaged_checkpoint=top.get("damaged_checkpoint", str, "end",
                                               allowed=["end", "beginning"]),
                    stall_timeout=top.positive("stall_timeout", 30))
    inputs = top.get("inputs", list)
    if not isinstance(inputs, list) or not inputs:
        top.fail("inputs", f"found {_show(inputs)}; expected a list of inputs (name, path, "
                 "format, metrics)")
    for i, raw in enumerate(inputs):
        config.inputs.append(_input(top.sub(f"inputs[{i}]", raw, getattr(inputs, "line", 1)), i))
    for i in _repeated([spec.name for spec in config.inputs]):
        section = top.sub(f"inputs[{i}]", inputs[i], getattr(inputs, "line", 1))
        section.fail("name", f"found {config.inputs[i].name!r} a second time; every input "
                     "needs its own name")
    place = _metric_section(top, inputs)
    _check_keys_are_the_hosts_own(place, config)
    if config.outputs:
        from .plugins import output_types
        types = output_types()
        for kind in {o.type for o in config.outputs}:
            types[kind].check_inputs(config, place)
    return config


def _repeated(names: list) -> list[int]:
    """The index of each name that appeared before it (a set: linear in the number of names)."""
    seen: set = set()
    repeated = []
    for i, name in enumerate(names):
        if name in seen:
            repeated.append(i)
        seen.add(name)
    return repeated


def _metric_section(top: _Section, raw_inputs):
    """(input index, metric index) -> the metric's section, made only to name a mistake."""
    def place(i: int, j: int) -> _Section:
        section = top.sub(f"inputs[{i}]", raw_inputs[i], getattr(raw_inputs, "line", 1))
        return section.sub(f"metrics[{j}]", raw_inputs[i]["metrics"][j])
    return place


def _check_keys_are_the_hosts_own(place, config: Config) -> None:
    """Every input sends to the one host of the configuration: a key (percentiles expanded)
    in two inputs would mix values that are not the same thing."""
    def where(at: tuple[int, int]) -> str:
        first = place(*at)
        return f"{first.where} (line {first.key_line('key')})"

    sent: dict[str, tuple[int, int]] = {}                   # key -> (input, metric)
    for i, spec in enumerate(config.inputs):
        for j, metric in enumerate(spec.metrics):
            for _, key in metric.keys():
                if key in sent:
                    place(i, j).fail("key", f"found {metric.key!r}, which sends {key}, a key "
                                     f"{where(sent[key])} sends too; every key of host "
                                     f"{config.host} comes from one metric of one input: "
                                     "rename one of them")
                sent[key] = (i, j)


def _outputs(top: _Section, host: str) -> tuple[list[OutputConfig], ZabbixConfig | None]:
    """The outputs, the `zabbix:` section first; and the Zabbix settings wherever given.
    Each output's class reads its own options (Output.configure): the outputs are found
    through their entry points (plogd.plugins), so the config knows none by name."""
    outputs: list[OutputConfig] = []
    zabbix = None
    if top.data.get("zabbix") is None and top.data.get("outputs") is None:
        return outputs, zabbix      # no output to load (a replay, a check of the inputs)
    from .plugins import output_types
    types = output_types()
    if top.data.get("zabbix") is not None:
        section = top.sub("zabbix", top.data["zabbix"])
        if "zabbix" not in types:
            section.fail(None, "the zabbix output is not installed (plogd plugins lists the "
                         "outputs there are)")
        zabbix = ZabbixConfig(**types["zabbix"].configure(section, host, ()))
        outputs.append(OutputConfig("zabbix", "zabbix", vars(zabbix),
                                    max_backlog=zabbix.spool_max_bytes,
                                    batch_size=zabbix.batch_size))
    raw = top.data.get("outputs")
    if raw is None:
        return outputs, zabbix
    if not isinstance(raw, list):
        top.fail("outputs", f"found {_show(raw)}; expected a list of outputs, e.g. "
                 "- {type: line, url: 'tcp://127.0.0.1:2003', format: graphite}")
    for i, entry in enumerate(raw):
        section = top.sub(f"outputs[{i}]", entry, getattr(raw, "line", 1))
        if not isinstance(entry, dict):
            section.fail(None, f"found {_show(entry)}; expected a mapping with a type: "
                         f"{', '.join(sorted(types))}")
        kind = section.get("type", str, allowed=sorted(types))
        name = section.get("name", str, kind)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            section.fail("name", f"found {name!r}; a name is letters, digits, '_', '.', '-' "
                         "(it names the output's state file)")
        if name in [o.name for o in outputs]:
            section.fail("name", f"found {name!r} a second time; give each output its own name:")
        runner = dict(on_full=section.get("on_full", str, "pause",
                                          allowed=["pause", "drop_oldest"]),
                      max_backlog=section.positive("max_backlog", 1 << 30),
                      batch_size=section.positive("batch_size", 1000))
        options = types[kind].configure(section, host, RUNNER_KEYS)
        if kind == "zabbix":
            if zabbix is not None:
                section.fail("type", "Zabbix is configured twice (the zabbix: section, or "
                             "another output of type zabbix); keep one")
            zabbix = ZabbixConfig(**options)
        outputs.append(OutputConfig(kind, name, options, **runner))
    return outputs, zabbix


def _input(section: _Section, index: int) -> InputConfig:
    section.check_keys(INPUT_KEYS)
    name = section.get("name", str, f"input{index + 1}")
    fmt = _format(section)
    listen = _listen(section)
    path = listen or section.get("path", str)
    metrics_data = section.get("metrics", list)
    if not isinstance(metrics_data, list) or not metrics_data:
        section.fail("metrics", f"found {_show(metrics_data)}; expected a list of metrics, "
                     "e.g. - {key: nginx.requests, type: count}")
    lateness = section.get("lateness", int, DEFAULT_LATENESS)
    if lateness < 0:
        section.fail("lateness", f"found {lateness}; expected 0 or more seconds")
    line = getattr(metrics_data, "line", section.line)
    filters: dict = {}      # where:/of: text -> Filter, for the metrics that share one
    metrics = [_metric(section.sub(f"metrics[{j}]", m, line), fmt, filters)
               for j, m in enumerate(metrics_data)]
    for j in _repeated([m.key for m in metrics]):
        section.sub(f"metrics[{j}]", metrics_data[j]).fail(
            "key", f"found {metrics[j].key!r} a second time in this input; every metric needs "
            "its own key")
    for j in _repeated([m.name for m in metrics]):
        first = [m.name for m in metrics].index(metrics[j].name)
        section.sub(f"metrics[{j}]", metrics_data[j]).fail(
            "key", f"found {metrics[j].key!r}, whose name {metrics[j].name!r} is that of "
            f"{metrics[first].key!r} too (metrics[{first}]); outputs other than Zabbix name "
            "series by it: give one of them a name:")
    problem = None if listen else _glob_problem(path)
    if problem:
        section.fail("path", f"found {path!r}: {problem}")
    return InputConfig(name=name, path=path, format=fmt,
                       start=section.get("start", str, "end", allowed=["end", "beginning"]),
                       lateness=lateness, metrics=metrics,
                       late=section.get("late", str, "drop", allowed=["drop", "current"]),
                       max_skew=section.positive("max_skew", DEFAULT_MAX_SKEW),
                       rewrite=_rewrites(section, fmt),
                       time_locale=section.get("time_locale", str, None),
                       timezone=_timezone_name(section),
                       continuation=_continuation(section, fmt), listen=listen)


def _glob_problem(path: str) -> str | None:
    """What is wrong with `path` as a glob (Python's glob takes these silently: the input
    would follow nothing, or not what was meant), else None."""
    if not glob.has_magic(path):
        return None
    for part in path.split(os.sep):
        if "**" in part:
            return ("'**' is one '*' here (no recursive globs): name each directory level, "
                    "e.g. /var/log/*/access.log")
        i = part.find("[")
        while i != -1:
            close = part.find("]", i + 2)         # a ']' right after '[' is a member
            if close == -1:
                return (f"the '[' at {part!r} opens a character class that no ']' closes "
                        "(in one directory level); write [[] for a '[' itself")
            members = part[i + 1:close].lstrip("!")
            for a, b in re.findall(r"(.)-(.)", members):
                if a > b:
                    return f"the range {a}-{b} in {part[i:close + 1]!r} is empty (reversed)"
            i = part.find("[", close + 1)
    return None


def secret_readable_by_others(section: _Section, key: str, path: str | None) -> None:
    """A TLS key or PSK that any user of the host can read still works, but is said."""
    try:
        mode = os.stat(path).st_mode if path else 0
    except OSError:
        return
    if mode & stat.S_IROTH:
        _log.warning("%s:%d: %s.%s: %s is readable by every user of this host (mode %04o); "
                     "only plogd should read it: chmod o-r %s", section.file,
                     section.key_line(key), section.where, key, path, stat.S_IMODE(mode), path)


def _rewrites(section: _Section, fmt: LogFormat) -> list[Rewrite]:
    """`rewrite:` a list of {field, match (a regex), replace}, applied in order."""
    data = section.get("rewrite", list, [])
    if not isinstance(data, list):
        section.fail("rewrite", f"found {_show(data)}; expected a list of "
                     "{field: path, match: '^/items/\\d+', replace: '/items/{id}'}")
    fields = input_fields(fmt)
    rules = []
    for i, raw in enumerate(data):
        rule = section.sub(f"rewrite[{i}]", raw, getattr(data, "line", section.line))
        rule.check_keys(REWRITE_KEYS)
        name = rule.get("field", str)
        if name not in fields:
            rule.fail("field", f"found {name!r}, a field format {fmt.name} does not have"
                      + _did_you_mean(name, list(fields)))
        if fields[name] in ("int", "float") or name == "timestamp":
            rule.fail("field", f"found {name!r}, which holds numbers; a rewrite changes text")
        try:
            match_text = rule.get("match", str)
            pattern = compile_user(match_text,
                                   f"{rule.file}:{rule.key_line('match')}: {rule.where}.match")
        except re.error as e:
            rule.fail("match", f"not a valid regular expression: {e}")
        except RecursionError:     # re's parser recurses once per nested group
            rule.fail("match", "a regular expression nested too deeply")
        replace = rule.get("replace", str)
        try:       # a bad group reference (\\3) fails here, not at run time
            always = re.compile(f"(?:{match_text})|")    # same groups, matches ""
        except re.error:
            always = None
        if always is not None:
            try:
                always.sub(replace, "")
            except (re.error, IndexError) as e:
                rule.fail("replace", f"found {replace!r}: {e}")
        rules.append(Rewrite(name, pattern, replace))
    return rules


def format_from(where: str, data: dict) -> LogFormat:
    """The format of an input's keys (format:, log_format:, apache_format:, time_locale:,
    time_format:, timezone:, time_field:, fields:) without an input around them: for the
    library API (plogd.api). Raises ConfigError naming `where` and the key."""
    section = _Section(where, "", data, 1)
    section.check_keys(FORMAT_KEYS + ["time_locale", "fields"] + TIME_KEYS)
    return _format(section)


def _format(section: _Section) -> LogFormat:
    """`format:` (a built-in name or regex:...), `log_format:` (nginx's own format string)
    or `apache_format:` (Apache's LogFormat string): exactly one of them."""
    given = [key for key in FORMAT_KEYS if key in section.data]
    if len(given) != 1:
        found = "none" if not given else " and ".join(given)
        section.fail(None, f"found {found}; an input needs exactly one of format: (a built-in "
                     "name or regex:...), log_format: (nginx) or apache_format: (Apache)")
    key = given[0]
    text = section.get(key, str)
    time_locale = section.get("time_locale", str, None)
    layout = _time_layout(section, key, text, time_locale)
    if time_locale is not None and key != "apache_format" and layout is None:
        section.fail("time_locale", f"found {time_locale!r} with {key}:; time_locale is the "
                     "locale of the month and day names in Apache's %{...}t times or in a "
                     "time_format:, and goes only with apache_format: or time_format:")
    try:
        if key == "log_format":
            fmt = compile_nginx(text)
        elif key == "apache_format":
            fmt = compile_apache(text, time_locale=time_locale)
        elif text == "json":
            fmt = _json_format(section, layout)
        elif layout is not None:
            time_field = section.get("time_field", str, "time_local")
            try:
                fmt = LogFormat.from_regex(text, text[len("regex:"):], time_field, layout)
            except FormatError as e:
                section.fail("time_field" if "time_field" in section.data else "format", str(e))
            _check_time_format(section, fmt, time_field, layout)
        else:
            fmt = get_format(text)
        if "fields" in section.data and text != "json":
            section.fail("fields", f"goes with format: json (the JSON path of each field), "
                         f"not with {key}: {text!r}")
    except LocaleError as e:
        section.fail("time_locale", str(e))
    except RecursionError:         # re's parser recurses once per nested group
        section.fail(key, "a regular expression nested too deeply")
    except FormatError as e:
        if key != "format":
            section.fail(key, str(e))
        names = format_names()
        allowed = names + ["json (with fields:)", "regex:<pattern with (?P<name>...) groups>"]
        hint = _did_you_mean(text, names) if not text.startswith("regex:") else ""
        section.fail(key, f"{e}; allowed: {', '.join(allowed)}{hint}")
    if "timestamp" not in fmt.fields:
        section.fail(key, "the format logs no date and time, so lines fit no window; it needs "
                     "$time_local, $time_iso8601 or $msec (nginx), %t or %{...}t (Apache), "
                     "or a regex group named time_local (in the common log format's layout; "
                     "another layout: time_format:, another group name: time_field:)")
    return fmt


def _continuation(section: _Section, fmt: LogFormat) -> re.Pattern | None:
    """`continuation:` a regex (matched at the start of a line): a line it matches is part of
    the entry before it. The error formats have one (a line that does not start as their
    entries do); `continuation: ''` turns it off."""
    text = section.get("continuation", str, fmt.continuation)
    if not text:
        return None
    try:
        return re.compile(text.encode())
    except re.error as e:
        section.fail("continuation", f"not a valid regular expression: {e}")


def _json_format(section: _Section, layout: TimeLayout | None) -> LogFormat:
    """`format: json` with `fields:` {field: JSON path}; its time in `time_field:` (default
    time_local), in `time_format:` (default iso8601; numbers are epoch seconds)."""
    mapping = section.get("fields", dict)
    if not isinstance(mapping, dict) or not mapping:
        section.fail("fields", f"found {_show(mapping)}; expected a mapping of plogd's field "
                     "names to JSON paths, e.g. {time_local: ts, status: status, path: "
                     "request.uri}")
    try:
        return json_format("json", dict(mapping), section.get("time_field", str, "time_local"),
                           layout)
    except FormatError as e:
        section.fail("fields", str(e))


def _listen(section: _Section) -> str | None:
    """`listen:` a syslog input's address, instead of a `path:`."""
    listen = section.get("listen", str, None)
    if listen is None:
        return None
    if "path" in section.data:
        section.fail("listen", "found it with path:; an input reads files (path:) or "
                     "receives syslog messages (listen:), not both")
    try:
        parse_address(listen)
    except ListenError as e:
        section.fail("listen", str(e))
    return listen


TIME_KEYS = ["time_format", "timezone", "time_field"]


def _time_layout(section: _Section, key: str, text: str, time_locale: str | None):
    """The TimeLayout of `time_format:` (with `timezone:`), for a regex: format; None
    without one."""
    layout = section.get("time_format", str, None)
    if layout is None:
        for other in TIME_KEYS[1:]:
            if other in section.data:
                section.fail(other, "goes with time_format: (how a regex: or json format "
                             "writes its time), which this input does not have")
        return None
    if key != "format" or not (text.startswith("regex:") or text == "json"):
        section.fail("time_format", f"found it with {key}: {text!r}; time_format: says how a "
                     "regex: or json format writes its time (the other formats know theirs)")
    try:
        return TimeLayout(layout, time_names(time_locale), _zone(section))
    except LocaleError as e:
        section.fail("time_locale", str(e))
    except FormatError as e:
        section.fail("time_format", f"{e}; expected a strftime layout such as "
                     "'%Y-%m-%d %H:%M:%S' or one of iso8601, epoch, epoch_ms, clf")


def _zone(section: _Section) -> tzinfo | None:
    """`timezone:` a zone name (Europe/Berlin, UTC) or `local` (the default: the system's
    zone); None for the local time."""
    name = section.get("timezone", str, "local")
    if name == "local":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        section.fail("timezone", f"found {name!r}, a zone this machine does not know; expected "
                     "a zone name such as Europe/Berlin or UTC, or local")


def _timezone_name(section: _Section) -> str | None:
    """What `plogd check` says of the zone of a time_format: input."""
    if "time_format" not in section.data:
        return None
    name = section.get("timezone", str, "local")
    return f"local ({system_zone_name()})" if name == "local" else name


def _check_time_format(section: _Section, fmt: LogFormat, time_field: str,
                       layout: TimeLayout) -> None:
    """A time_format: that does not fit the input's file is refused at start-up, with the
    first line whose time does not fit and where it stops fitting."""
    path = section.data.get("path")
    if not isinstance(path, str) or not os.path.isfile(path):
        return
    try:
        misfit = time_misfit(fmt, time_field, layout, read_sample(path))
    except OSError:
        return          # the reader says so, and retries
    if misfit is not None:
        number, why = misfit
        section.fail("time_format", f"{path} line {number}: {why}")


def _metric(section: _Section, fmt: LogFormat, filters: dict) -> Metric:
    """`filters`: the input's compiled filters by text (150k metrics of a 10 MB file that
    share a few where: compile in a second, not five; a Filter is never changed)."""
    section.check_keys(METRIC_KEYS)
    key = section.get("key", str)
    kind = section.get("type", str, allowed=list(TYPES))
    fields = input_fields(fmt)
    available = list(fields)

    def known_field(option: str) -> str | None:
        name = section.get(option, str, None)
        if name is not None and name not in fields:
            section.fail(option, f"found {name!r}, a field format {fmt.name} does not have; "
                         f"its fields: {', '.join(available)}" + _did_you_mean(name, available))
        return name

    field_name = known_field("field")
    if kind in NEEDS_FIELD:
        if field_name is None:
            what = "a numeric field" if kind in NUMERIC_FIELD else "a field"
            section.fail(None, f"a {kind} metric needs 'field:' ({what} of {fmt.name})")
        if kind in NUMERIC_FIELD and fields[field_name] not in ("int", "float"):
            numbers = [n for n, t in fields.items() if t in ("int", "float")]
            section.fail("field", f"found {field_name!r}, which holds text; a {kind} needs a "
                         f"numeric field: {', '.join(numbers)}")
    elif field_name is not None:
        section.fail("field", f"a {kind} takes no field (use 'where:' to count only some lines)")
    q = _percents(section, kind, key)
    by = known_field("by")
    bare = key.replace("{q}", "") if kind == "percentile" else key
    if by is not None and "{" + by + "}" not in key:
        section.fail("key", f"found {key!r}, without the placeholder {{{by}}} that 'by: {by}' "
                     f"fills in, e.g. {key.rstrip(']')}[{{{by}}}]" if "[" not in key
                     else f"found {key!r}, without the placeholder {{{by}}} that 'by: {by}' "
                     "fills in")
    if by is None and "{" in bare:
        section.fail("key", f"found {key!r} with a placeholder but no 'by:' to fill it")
    top = DEFAULT_TOP
    if "top" in section.data:
        if by is None:
            section.fail("top", "'top:' caps the groups of a 'by:' metric; this one has no 'by:'")
        top = section.positive("top", DEFAULT_TOP)
    numeric = {n: t in ("int", "float") for n, t in fields.items()}

    def a_filter(option: str):
        if option not in section.data:
            return None
        text = section.get(option, str)
        if text not in filters:
            try:
                filters[text] = compile_filter(text, numeric)
            except FilterError as e:
                section.fail(option, str(e))
        return filters[text]

    where = a_filter("where")
    of = a_filter("of")
    if kind == "ratio" and where is None:
        section.fail(None, "a ratio metric needs 'where:' (the lines it counts, e.g. "
                     "\"status >= 500\"), and may have 'of:' (the lines it divides by; "
                     "default: every line)")
    if of is not None and kind != "ratio":
        section.fail("of", f"'of:' is the denominator of a ratio; a {kind} has none")
    name = section.get("name", str, None)
    if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:-]*", name):
        section.fail("name", f"found {name!r}; a metric's name is letters, digits and "
                     "'_', '.', ':', '-', starting with a letter (e.g. nginx.requests)")
    return Metric(key, kind, field_name, by, where, q=q, of=of, top=top,
                  alert=_alert(section, kind, q), name=name)


def _alert(section: _Section, kind: str, q: list | None) -> Alert | None:
    """`alert: {above: 0.05, for: 5m, severity: average}`: a Zabbix trigger (see
    plogd.outputs.zabbix.template); `q:` picks the percentile of a percentile metric with
    several."""
    if "alert" not in section.data:
        return None
    q = q or []             # None: not a percentile
    alert = section.sub("alert", section.data["alert"])
    alert.check_keys(ALERT_KEYS)
    sides = [side for side in ("above", "below") if side in alert.data]
    if len(sides) != 1:
        alert.fail(None, f"found {' and '.join(sides) or 'neither'}; an alert needs exactly one "
                   "of above: or below:, a number in the metric's unit (e.g. above: 0.05)")
    threshold = alert.data[sides[0]]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        alert.fail(sides[0], f"found {_show(threshold)}; expected a number (e.g. 0.05, 2.5, 100)")
    duration = alert.data.get("for", 0)
    match = _DURATION.match(str(duration)) if not isinstance(duration, bool) else None
    if match is None:
        alert.fail("for", f"found {_show(duration)}; expected how long, in seconds or with a "
                   "unit: 300, 30s, 5m, 1h, 1d")
    watched = alert.data.get("q")
    if kind != "percentile" and watched is not None:
        alert.fail("q", f"'q:' picks the percentile an alert watches; a {kind} has none")
    if kind == "percentile" and watched is None and len(q) > 1:
        alert.fail(None, f"this percentile has several q ({', '.join(map(str, q))}); say which "
                   "one the alert watches with q:, e.g. q: 95")
    if watched is not None and watched not in q:
        alert.fail("q", f"found {_show(watched)}; allowed: {', '.join(map(str, q))} (the "
                   "metric's q)")
    return Alert(threshold=threshold, above=sides[0] == "above",
                 for_seconds=int(match.group(1)) * _SECONDS[match.group(2)],
                 severity=alert.get("severity", str, "warning", allowed=SEVERITIES),
                 q=watched if watched is not None else (q[0] if q else None))


def _percents(section: _Section, kind: str, key: str) -> list | None:
    """`q:` of a percentile: a percent or a list of them, each 0 to 100."""
    if kind != "percentile":
        if "q" in section.data:
            section.fail("q", f"'q:' is the percentile(s) of a percentile metric; a {kind} "
                         "has none")
        if "{q}" in key:
            section.fail("key", f"found {key!r} with {{q}}, which only a percentile fills in")
        return None
    if "q" not in section.data:
        section.fail(None, "a percentile metric needs 'q:', a percent or a list, e.g. "
                     "q: [50, 95, 99, 99.9]")
    raw = section.data["q"]
    values = raw if isinstance(raw, list) else [raw]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            section.fail("q", f"found {_show(value)}; expected a percent from 0 to 100 "
                         "(e.g. 50, 99.9) or a list of them")
    if not values or len(set(values)) != len(values):
        section.fail("q", f"found {_show(raw)}; expected one or more different percents")
    if len(values) > 1 and "{q}" not in key:
        section.fail("key", f"found {key!r}, without the placeholder {{q}} that the "
                     f"{len(values)} percentiles of 'q:' fill in, e.g. "
                     f"{key.rstrip(']')}[p{{q}}]")
    return values

"""`plogd init LOGFILE...`: a first configuration made from the logs themselves.

Each log's format is detected (a log that no built-in format fits is refused with the detect
report; --format names the format of a log that is still empty), its default metric set
(plogd.defaults) is written with comments, the file is validated by loading it, and the next
commands are printed. As root, the systemd unit (ExecStart naming the plogd that runs this)
and the plogd system user are installed where they are missing, so `systemctl enable --now
plogd` works at once. --root DIR does all of it under DIR instead of / (for tests).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

import yaml

from . import config as config_module
from .config import ConfigError
from .defaults import metrics_for
from .formats import BUILTIN_TEMPLATES, get_format
from .formats.detect import detect, first_failure, match_ratio, read_sample
from .packaging import shipped_file
from .outputs.zabbix.agent_config import AgentConfigError, parse_clusters

FITS = 0.9          # a built-in format fits a log when it matches this share of its lines
AGENT_CONFIGS = ("etc/zabbix/zabbix_agent2.conf", "etc/zabbix/zabbix_agentd.conf")
UNITS = ("etc/systemd/system/plogd.service", "usr/lib/systemd/system/plogd.service",
         "lib/systemd/system/plogd.service")
SYSUSERS = ("etc/sysusers.d/plogd.conf", "usr/lib/sysusers.d/plogd.conf")
UNIT_EXEC = "/usr/local/bin/plogd"       # the plogd of the unit file as shipped


@dataclass
class Log:
    path: str
    name: str
    format: str
    note: str                   # how the format was found, for the summary


def add_arguments(p) -> None:
    p.description = ("Write a commented configuration for LOGFILEs: each log's format "
                     "detected, that format's default metric set, validated. As root, also "
                     "install the systemd unit and the plogd user where they are missing.")
    p.add_argument("logfiles", nargs="+", metavar="LOGFILE")
    p.add_argument("-o", "--output", help=f"the configuration to write (default: "
                                          f"{config_module.DEFAULT_PATH})")
    p.add_argument("--zabbix-server", metavar="HOST[:PORT]",
                   help="the Zabbix server or proxy to send to (default: the Zabbix agent's "
                        "ServerActive when its configuration is found, else 127.0.0.1)")
    p.add_argument("--host", metavar="NAME", help="the Zabbix host name (default: the agent's "
                                                  "Hostname, else this machine's name)")
    p.add_argument("--format", choices=list(BUILTIN_TEMPLATES),
                   help="the format of the logs, instead of detecting it (for a log that is "
                        "still empty)")
    p.add_argument("--force", action="store_true", help="overwrite an existing configuration")
    p.add_argument("--root", default="/", help="install under this directory instead of / "
                                               "(for tests and packaging)")


def run(args) -> int:
    root = os.path.abspath(args.root)
    output = os.path.abspath(args.output or _under(root, config_module.DEFAULT_PATH))
    if os.path.exists(output) and not args.force:
        raise ConfigError(f"{output} exists: plogd init never overwrites a configuration; "
                          "--force does, or -o FILE writes another one")
    logs = [_log(path, args.format) for path in args.logfiles]
    _name_inputs(logs)
    text = render(logs, _zabbix_lines(args, root))
    _write_validated(output, text)
    for log in logs:
        print(f"{log.path}: {log.note} -> input {log.name}")
    print(f"wrote {output}")
    if root != "/" or os.geteuid() == 0:
        install_service(root, output)
    else:
        print("not root: the systemd unit and the plogd user are not installed (run plogd "
              "init as root, or see README.md, \"Install as a service\")")
    print(f"\nnext:\n  plogd zabbix provision -c {output} --url https://ZABBIX --user Admin "
          "--password-file FILE\n  systemctl enable --now plogd")
    return 0


def _under(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


# -- the logs --------------------------------------------------------------------------------

def _log(path: str, forced: str | None) -> Log:
    path = os.path.abspath(path)
    if not os.path.exists(path):
        if forced:
            return Log(path, "", forced, f"format {forced} (--format; the log does not exist "
                                         "yet, plogd waits for it)")
        raise ConfigError(f"{path}: no such file; give --format NAME for a log that does not "
                          f"exist yet ({', '.join(BUILTIN_TEMPLATES)})")
    try:
        sample = read_sample(path)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    if forced:
        ratio = match_ratio(get_format(forced), sample)
        seen = f", matches {ratio:.0%} of {len(sample)} lines" if sample else ""
        return Log(path, "", forced, f"format {forced} (--format{seen})")
    if not sample:
        raise ConfigError(f"{path}: the log is empty, so its format cannot be detected; give "
                          f"--format NAME ({', '.join(BUILTIN_TEMPLATES)})")
    ranking = detect(sample)
    best, ratio = ranking[0]
    if ratio < FITS:
        raise ConfigError(f"{path}: no built-in format fits (at least {FITS:.0%} of the "
                          f"lines); of the first {len(sample)} lines:\n"
                          + _detect_report(ranking, sample) +
                          "\ndescribe the log in a configuration with log_format: (nginx), "
                          "apache_format: (Apache) or format: regex:... (README, \"Formats\")")
    return Log(path, "", best, f"format {best} (matches {ratio:.0%} of {len(sample)} lines)")


def _detect_report(ranking: list[tuple[str, float]], sample: list[bytes]) -> str:
    lines = [f"  {name:<24} {ratio:7.1%}" for name, ratio in ranking]
    best = ranking[0][0]
    failure = first_failure(get_format(best), sample)
    if failure is not None:
        index, line, why = failure
        lines.append(f"  {best}: line {index + 1} does not match: {line[:120]!r}\n    {why}")
    return "\n".join(lines)


def _name_inputs(logs: list[Log]) -> None:
    """Input names from the file names (access.log -> access), made unique."""
    taken: set[str] = set()
    for log in logs:
        stem = re.sub(r"\.log$", "", os.path.basename(log.path))
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "log"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}{n}"
        taken.add(name)
        log.name = name


# -- the configuration -----------------------------------------------------------------------

def _prefix(format_name: str) -> str:
    return metrics_for(format_name)[0]["key"].split(".")[0]      # nginx / apache


def _metrics(log: Log, logs: list[Log]) -> list[dict]:
    """The format's default set; with several logs of one kind, each input's keys carry its
    name (nginx.api.requests), since all of them go to one host."""
    prefix = _prefix(log.format)
    metrics = metrics_for(log.format)
    if sum(_prefix(other.format) == prefix for other in logs) > 1:
        for m in metrics:
            m["key"] = m["key"].replace(f"{prefix}.", f"{prefix}.{log.name}.", 1)
    return metrics


def _flow(mapping: dict) -> str:
    return yaml.safe_dump(mapping, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _timing_hint(log: Log, logs: list[Log]) -> list[str]:
    """For an nginx log without request times: the log_format that adds them, and the
    metrics it allows, commented out."""
    if not log.format.startswith("nginx") or "$request_time" in BUILTIN_TEMPLATES[log.format]:
        return []
    timed = Log(log.path, log.name, "nginx_timed", "")
    have = {m["key"] for m in _metrics(log, logs)}
    extra = [m for m in _metrics(timed, logs) if m["key"] not in have]
    fmt = BUILTIN_TEMPLATES["nginx_timed"]
    return ["    # This format logs no request times. For latency metrics, log them: in "
            "nginx.conf,",
            f"    #   log_format timed '{fmt}';",
            f"    #   access_log {log.path} timed;",
            "    # then set `format: nginx_timed` above and uncomment these:",
            *[f"      # - {_flow(m)}" for m in extra]]


def render(logs: list[Log], zabbix: list[str]) -> str:
    lines = ["# plogd configuration, written by `plogd init` (README.md, \"Configuration\").",
             "# Check it with: plogd check -c THIS_FILE", "",
             "interval: 60                     # window length in seconds",
             "state_dir: /var/lib/plogd        # results.jsonl and the checkpoint", "",
             *zabbix, "", "inputs:"]
    for log in logs:
        lines += [f"  - name: {log.name}",
                  f"    path: {log.path}",
                  f"    format: {log.format}",
                  "    start: end                     # a first start reads from the end",
                  "    metrics:",
                  *[f"      - {_flow(m)}" for m in _metrics(log, logs)],
                  *_timing_hint(log, logs)]
    return "\n".join(lines) + "\n"


def _zabbix_lines(args, root: str) -> list[str]:
    lines = ["zabbix:"]
    agent = next((_under(root, p) for p in AGENT_CONFIGS if os.path.isfile(_under(root, p))),
                 None)
    if args.zabbix_server:
        try:
            clusters = parse_clusters(args.zabbix_server, "--zabbix-server")
        except AgentConfigError as e:
            raise ConfigError(str(e).replace("ServerActive: ", "")) from None
        if len(clusters) != 1 or len(clusters[0]) != 1:
            raise ConfigError(f"--zabbix-server: found {args.zabbix_server!r}; expected one "
                              "server, HOST[:PORT] (several servers or HA nodes come from the "
                              "agent's ServerActive: agent_config:)")
        [[(server, port)]] = clusters
        lines += [f"  server: {server}", f"  port: {port}"]
    elif agent:
        lines += [f"  agent_config: {agent}   # ServerActive, Hostname and TLS of the agent"]
    else:
        lines += ["  server: 127.0.0.1              # the Zabbix server or proxy: change it",
                  "  port: 10051"]
    if args.host:
        lines += [f"  host: {args.host}"]
    else:
        lines += ["  # host: web01                  # the Zabbix host name (default: the agent's "
                  "Hostname, else this machine's name)"]
    return lines


def _write_validated(output: str, text: str) -> None:
    """Write `output` only once the text loads as a configuration (written next to it
    first, so an error names a line of what was written)."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    draft = output + ".new"
    try:
        with open(draft, "w", encoding="utf-8") as f:
            f.write(text)
        config_module.load(draft)
        os.replace(draft, output)
    except OSError as e:
        raise ConfigError(f"{e.filename or output}: {e.strerror}") from None
    finally:
        if os.path.exists(draft):
            os.unlink(draft)


# -- the service -----------------------------------------------------------------------------

def plogd_executable() -> str:
    """The plogd script of this installation: next to the interpreter (a venv), else on
    PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "plogd")
    return beside if os.access(beside, os.X_OK) else (shutil.which("plogd") or UNIT_EXEC)


def unit_text(executable: str, config_path: str) -> str:
    with open(shipped_file("systemd/plogd.service"), encoding="utf-8") as f:
        text = f.read()
    return text.replace(f"{UNIT_EXEC} --multi -c {config_module.DEFAULT_PATH}",
                        f"{executable} --multi -c {config_path}")


def install_service(root: str, output: str) -> None:
    installed = [p for p in UNITS if os.path.exists(_under(root, p))]
    if installed:
        print(f"systemd unit: /{installed[0]} is there, kept")
    else:
        executable = plogd_executable()
        inside = os.path.relpath(output, root)     # the path on the system being set up
        config_path = output if inside.startswith("..") else "/" + inside
        unit = _under(root, UNITS[0])
        _install(unit, unit_text(executable, config_path))
        print(f"systemd unit: installed {unit} (ExecStart={executable})")
        if re.match(r"/(home|root|run/user)/", executable):
            print(f"  warning: the service cannot run {executable}: it protects /home and "
                  "/root (ProtectHome=yes); install plogd in /opt or /usr/local (README.md, "
                  "\"Install as a service\")")
    sysusers = [p for p in SYSUSERS if os.path.exists(_under(root, p))]
    conf = _under(root, sysusers[0] if sysusers else SYSUSERS[1])
    if not sysusers:
        with open(shipped_file("systemd/plogd.sysusers.conf"), encoding="utf-8") as f:
            _install(conf, f.read())
    if _has_user(root, "plogd"):
        print("system user: plogd exists")
    else:
        command = ["systemd-sysusers", *([f"--root={root}"] if root != "/" else []), conf]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
            problem = result.stderr.strip()
        except FileNotFoundError:
            problem = "systemd-sysusers not found"
        if not _has_user(root, "plogd"):
            raise ConfigError(f"could not create the system user plogd ({' '.join(command)}): "
                              f"{problem}")
        print("system user: created plogd (member of adm, which may read web server logs)")
    if root == "/" and os.path.isdir("/run/systemd/system"):
        subprocess.run(["systemctl", "daemon-reload"], check=False)


def _install(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o644)


def _has_user(root: str, name: str) -> bool:
    try:
        with open(_under(root, "etc/passwd"), encoding="utf-8") as f:
            return any(line.split(":", 1)[0] == name for line in f)
    except OSError:
        return False

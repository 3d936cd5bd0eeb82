"""plogd's command line."""
from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import textwrap

from . import __version__
from . import config as config_module
from . import log
from .config import ConfigError
from .defaults import config_for_format
from .formats import (FormatError, compile_apache, compile_nginx, describe_fields,
                      format_names, get_format)
from .formats.compiled import status as speedup_status
from .formats.detect import (detect, explain, first_failure, match_ratio, read_sample,
                             server_hint)
from .formats.strftime import LocaleError
from .output import Progress, sender_line
from .sources import STDIN, check_readable, replay_order, size_of
from .stages.read import read_file, split_lines
from .spool import encode

DESCRIPTION = """\
Follow nginx/Apache/regex logs, aggregate per time window, write every closed window to a
result file and send it on: to Zabbix, over TCP/UDP as JSON, Graphite, InfluxDB or statsd
lines, to Prometheus, or to an output plugin.

  plogd --multi -c FILE         the daemon: follow the inputs of FILE, one process per stage
  plogd --single -c FILE        the same in one process (the default; for debugging)
  plogd init LOGFILE...         write a configuration for these logs (as root: and the service)
  plogd check -c FILE           validate a configuration and show what it will send
  plogd replay ...              compute the windows of existing log files
  plogd parse --format NAME     print each line's typed fields as JSON
  plogd detect FILE             which format (built-in or a plugin's) a log is in
  plogd zabbix template -c FILE a Zabbix template (items, discovery, triggers, dashboard)
  plogd zabbix provision -c FILE --url URL ...
                                import the template, create the host in Zabbix (the API)
  plogd demo                    follow a log of generated nginx traffic and show the windows
  plogd top -c FILE             a live view of the running plogd of FILE (q quits)
  plogd plugins                 the installed formats and outputs, built-in and plugins
  plogd shipped [NAME]          where the shipped example configurations and systemd files are
  plogd manpage                 print the man page (roff), generated from this command line
  plogd completion bash|zsh     print the shell completion script
"""

COMMANDS = ("init", "check", "replay", "parse", "detect", "demo", "top", "plugins", "shipped",
            "manpage", "completion", "zabbix")

EXIT_CODES = [
    (0, "success (for --multi: stopped cleanly, everything read was written)"),
    (1, "failure: `detect` found no format; --multi had to kill a stage that would not stop; "
        "an unexpected error"),
    (2, "refused: a configuration or command line plogd cannot run (it names the file, line "
        "and key); systemd does not restart on it (RestartPreventExitStatus=2)"),
    (130, "interrupted (Ctrl-C)"),
]



def default_workers() -> int:
    """One parser per core, at most 4. Each parser costs about 11 MB of PSS (measured with
    smaps_rollup while parsing, nginx_timed, 4 parsers) plus up to QUEUE_BATCHES + 1 batches
    of 1 MiB in shared memory: 16 MB each, 1 GB on a 64-core host, for nothing — the single
    reader and the single aggregator set the pace long before 64 parsers would."""
    return min(os.cpu_count() or 1, 4)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] in COMMANDS:
            return _commands()[argv[0]](_subparser(argv[0]).parse_args(argv[1:]))
        if argv and not argv[0].startswith("-"):
            raise ConfigError(f"unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}"
                              + config_module._did_you_mean(argv[0], COMMANDS))
        return _run(_run_parser().parse_args(argv))
    except ConfigError as e:
        print(f"plogd: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None:
            raise
        # a path given on the command line that cannot be read (or written): one line
        print(f"plogd: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:    # `plogd parse ... | head`
        sys.stderr.close()
        return 0


def _run_parser() -> argparse.ArgumentParser:
    usage = ("plogd [--single | --multi] [-c FILE] [options]\n"
             f"       plogd {{{','.join(COMMANDS)}}} ...")
    epilog = "exit status:\n" + "\n".join(
        textwrap.fill(meaning, 88, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7)
        for code, meaning in EXIT_CODES)
    p = argparse.ArgumentParser(prog="plogd", description=DESCRIPTION, usage=usage, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--single", action="store_true",
                      help="run every stage in one process (the default; for debugging)")
    mode.add_argument("--multi", action="store_true",
                      help="one process per stage under a supervisor (what systemd runs)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="parser processes with --multi (default: the number of cores, at "
                        "most 4: %(default)s)")
    p.add_argument("--once", action="store_true",
                   help="stop once every input has been read to its end (cron-style runs, "
                        "benchmarks); open windows stay in the checkpoint")
    p.add_argument("-c", "--config", default=config_module.DEFAULT_PATH,
                   help="configuration file (default: %(default)s)")
    p.add_argument("--daemon", action="store_true",
                   help="with --multi: detach (double fork) for hosts without systemd; "
                        "needs --pidfile, logs to --log-file")
    p.add_argument("--pidfile", help="the pid file of --daemon; plogd refuses to start when it "
                                     "names a live process")
    p.add_argument("--log-file", help="where --daemon logs (default: STATE_DIR/plogd.log)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--version", action="version",
                   version=f"plogd {__version__}, {speedup_status()}")
    return p


def _subparser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"plogd {command}")
    if command == "init":
        from . import init
        init.add_arguments(p)
    elif command == "check":
        p.description = ("Validate a configuration; print its inputs, formats and the Zabbix "
                         "items it needs (keys, value types, units, discovery rules).")
        p.add_argument("-c", "--config", default=config_module.DEFAULT_PATH)
        p.add_argument("--json", action="store_true",
                       help="print the Zabbix items as JSON (for scripts) instead")
    elif command == "replay":
        p.description = ("Compute the windows of existing log files and print their value "
                         "records (JSON lines, or zabbix_sender input with --sender-format).")
        p.add_argument("-c", "--config", help="take the format and metrics from this configuration")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--input",
                           help="the input of the configuration to use (default: the first)")
        which.add_argument("--format", help="a format (built-in or a plugin's), with its "
                           "default metric set")
        p.add_argument("--interval", type=int, help="window length in seconds (default: the "
                       "configuration's, or 60)")
        p.add_argument("-o", "--output", help="write here instead of standard output")
        p.add_argument("--sender-format", action="store_true",
                       help="write `zabbix_sender -T -i` input: host key clock value")
        p.add_argument("logfiles", nargs="+", metavar="LOGFILE",
                       help="- for standard input; gzip, bzip2, xz and zstd files are "
                            "decompressed; a rotation set is read oldest first")
    elif command == "parse":
        p.description = "Print one JSON object per line with the typed fields of the format."
        which = p.add_mutually_exclusive_group(required=True)
        which.add_argument("--format", help="a format's name (`plogd plugins` lists them) or "
                                            "regex:PATTERN")
        which.add_argument("--log-format", help="an nginx log_format string")
        which.add_argument("--apache-format", help="an Apache LogFormat string")
        p.add_argument("--time-locale", metavar="LOCALE",
                       help="with --apache-format: the locale of the month and day names in "
                            "its %%{...}t times, e.g. de_DE.UTF-8 (default: C, English)")
        p.add_argument("files", nargs="*", metavar="FILE",
                       help="- or none: standard input; compressed files are decompressed")
    elif command == "detect":
        p.description = ("Read the first lines of FILE and name the format (built-in or a "
                         "plugin's) that matches best, with its match ratio.")
        p.add_argument("file", metavar="FILE")
        p.add_argument("--lines", type=int, default=1000, help="lines to read (%(default)s)")
    elif command == "demo":
        p.description = ("Write realistic nginx traffic to a log and follow it: the main job "
                         "with an embedded configuration, no Zabbix needed.")
        p.add_argument("--duration", type=float, default=30,
                       help="seconds to run, 0 for until Ctrl-C (default: %(default)s)")
        p.add_argument("--dir", help="where to put the log and the state (default: a new temp dir)")
    elif command == "zabbix":
        p.description = "The Zabbix side, made from the configuration."
        actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
        t = actions.add_parser("template", help="write a Zabbix template (6.0 YAML export)",
                               description="Write a Zabbix template export (6.0 YAML, imported "
                               "by 6.0 and later): trapper items, discovery rules, triggers, "
                               "value maps and a dashboard for what the configuration sends.")
        t.add_argument("-c", "--config", default=config_module.DEFAULT_PATH)
        t.add_argument("-o", "--output", help="write here instead of standard output")
        t.add_argument("--name", help="the template's name (default: plogd for plogd.yaml, "
                                      "plogd NAME for NAME.yaml)")
        from .outputs.zabbix import provision
        provision.add_arguments(actions.add_parser(
            "provision", help="import the template, create the host or link it (the API)"))
    elif command == "top":
        p.description = ("A live view of a running plogd, read from its state directory "
                         "(never disturbing it): per input lines/s, status mix, latency "
                         "percentiles, lag, unmatched and late lines; the sender's state. "
                         "q quits.")
        p.add_argument("-c", "--config", default=config_module.DEFAULT_PATH)
        p.add_argument("--refresh", type=float, default=1.0,
                       help="seconds between frames (default: %(default)s)")
        p.add_argument("--once", action="store_true",
                       help="print one frame as plain text and exit (for scripts)")
    elif command == "plugins":
        p.description = ("List the formats and outputs installed (entry points plogd.formats "
                         "and plogd.outputs): name, module:object, distribution and version, "
                         "built-in or plugin, and why one is not used. Exit status 1 when one "
                         "is not used.")
        p.add_argument("--json", action="store_true", help="one JSON object per entry point")
    elif command == "shipped":
        p.description = ("Print the path of a file shipped with plogd (the example "
                         "configurations, the systemd unit), or list them all.")
        p.add_argument("name", nargs="?", metavar="NAME", help="e.g. systemd/plogd.service")
    elif command == "manpage":
        p.description = "Print plogd's man page (roff), generated from its command line."
    elif command == "completion":
        p.description = "Print the completion script of a shell, generated from the command line."
        p.add_argument("shell", choices=["bash", "zsh"])
    return p


def parsers() -> dict[str, argparse.ArgumentParser]:
    """The command line's parsers: "" for the main one, then one per command."""
    return {"": _run_parser(), **{command: _subparser(command) for command in COMMANDS}}


def _commands():
    return {"check": _check, "replay": _replay, "parse": _parse, "detect": _detect,
            "demo": _demo, "top": _top, "plugins": _plugins, "shipped": _shipped,
            "manpage": _manpage, "completion": _completion, "zabbix": _zabbix, "init": _init}


def _run(args) -> int:
    # a stop asked for while starting up is a clean stop too (the runners take over later)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(0))
    log.setup(args.log_level)
    config = config_module.load(args.config)
    if args.daemon and not (args.multi and args.pidfile):
        raise ConfigError("--daemon goes with --multi and --pidfile FILE")
    if args.multi:
        if args.workers < 1:
            raise ConfigError(f"--workers: found {args.workers}; expected 1 or more")
        from .supervisor import run_multi
        if not args.daemon:
            return run_multi(config, args.workers, args.once)
        from .daemonize import daemonize
        context = daemonize(args.pidfile, args.log_file or os.path.join(config.state_dir,
                                                                         "plogd.log"),
                            args.log_level)
        try:
            return run_multi(config, args.workers, args.once)
        finally:
            context.close()
    from .runner import run_single
    run_single(config, once=args.once)
    return 0


def _check(args) -> int:
    config = config_module.load(args.config)
    gc.freeze()     # it lives until exit: the GC need not walk it again (a 10 MB one: 1 s)
    from .outputs.zabbix.items import describe_metric, zabbix_items
    items = zabbix_items(config)
    if args.json:
        print(json.dumps(items.as_dict(), indent=2))
        return 0
    print(f"{config.path}: OK")
    print(f"interval {config.interval} s, state in {config.state_dir}, results in "
          f"{config.result_path}")
    if config.zabbix:
        print(f"zabbix: {config.zabbix.server}:{config.zabbix.port}, host {config.zabbix.host!r}")
    else:
        print("zabbix: not configured")
    for output in config.outputs:
        print(f"output {output.name}: {output.type}, on_full {output.on_full}, max_backlog "
              f"{output.max_backlog} B")
    if not config.outputs:
        print("outputs: none (results are only written)")
    for spec in config.inputs:
        names = f" (time names of {spec.time_locale})" if spec.time_locale else ""
        names += f", times without an offset in {spec.timezone}" if spec.timezone else ""
        print(f"\ninput {spec.name}: {spec.path}, format {spec.format.name}{names}, "
              f"start {spec.start}, lateness {spec.lateness} s")
        print("  fields:")
        for name, description in describe_fields(spec.format):
            print(f"    {name:<28} {description}")
        print("  metrics (Zabbix trapper items: key, value type, units, what):")
        if os.path.isfile(spec.path):
            sample = read_sample(spec.path, max_line=config.max_line_length)
            _report_match(spec.format, sample, spec.path)
        for item in items.items:
            if item.input == spec.name and item.metric is not None:
                print(f"    {item.key:<40} {item.value_type:<8} {item.units or '-':<6} "
                      f"{describe_metric(item.metric, item.q)}")
        for rule in items.discoveries:
            if rule.input == spec.name:
                print(f"    discovery rule {rule.key}, macro {rule.macro}, item prototypes:")
                for item in rule.prototypes:
                    assert item.metric is not None      # a prototype is one of its metrics
                    print(f"      {item.key:<38} {item.value_type:<8} {item.units or '-':<6} "
                          f"{describe_metric(item.metric, item.q)}")
    print("\nplogd's own items:")
    for item in items.plogd:
        print(f"    {item.key:<40} {item.value_type:<8} {item.units or '-'}")
    rule = items.plogd_inputs
    print(f"    discovery rule {rule.key}, macro {rule.macro}, item prototypes:")
    for item in rule.prototypes:
        print(f"      {item.key:<38} {item.value_type:<8} {item.units or '-'}")
    return 0


def _zabbix(args) -> int:
    if args.action == "provision":
        from .outputs.zabbix import provision
        return provision.run(args)
    from .outputs.zabbix.template import render_template
    text = render_template(config_module.load(args.config), args.name)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _replay(args) -> int:
    log.setup("WARNING")
    if args.format:
        try:
            get_format(args.format)
        except FormatError as e:
            raise ConfigError(f"--format: {e}; formats: {', '.join(format_names())}") from e
        data = config_for_format(args.format, args.interval or 60)
        config = config_module.from_data(f"<default metrics of {args.format}>", data)
    elif args.config:
        config = config_module.load(args.config)
        if args.interval:
            config.interval = args.interval
    else:
        raise ConfigError("replay needs -c FILE (with --input NAME) or --format NAME")
    spec = config.input(args.input)
    paths = replay_order(args.logfiles)
    for path in paths:
        check_readable(path)
    from .runner import replay
    progress = Progress(sum(map(size_of, paths)))
    result, aggregate = replay(config, spec, paths, progress.advance)
    progress.done()
    out = open(args.output, "wb") if args.output else sys.stdout.buffer
    with out:
        line = sender_line if args.sender_format else encode
        out.write(b"".join(map(line, result)))
    counters = aggregate.aggregators[spec.name].counters
    print(f"plogd replay: {counters.lines} lines, {counters.unmatched} unmatched, "
          f"{counters.too_long} too long, {counters.odd_time} odd_time (no time, or an odd "
          f"one), {counters.windows} windows, {len(result)} values", file=sys.stderr)
    return 0


def _parse_format(args):
    if args.time_locale is not None and not args.apache_format:
        raise ConfigError("--time-locale goes with --apache-format: it is the locale of the "
                          "month and day names in Apache's %{...}t times")
    try:
        if args.log_format:
            return compile_nginx(args.log_format)
        if args.apache_format:
            return compile_apache(args.apache_format, time_locale=args.time_locale)
        return get_format(args.format)
    except LocaleError as e:
        raise ConfigError(f"--time-locale: {e}") from e
    except FormatError as e:
        raise ConfigError(f"the format: {e}; formats: {', '.join(format_names())}") from e


def _parse(args) -> int:
    fmt = _parse_format(args)
    lines = unmatched = 0
    first_unmatched = None
    out = sys.stdout
    paths = args.files or [STDIN]
    for path in paths:
        check_readable(path)
    for path in paths:
        for batch in read_file("parse", path, config_module.DEFAULT_MAX_LINE):
            for raw in split_lines(batch.data):
                lines += 1
                record = fmt.parse(raw)
                if record is None:
                    unmatched += 1
                    first_unmatched = first_unmatched or (lines, raw)
                else:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    ratio = 1 - unmatched / lines if lines else 1.0
    print(f"plogd parse: {lines} lines, {unmatched} unmatched by format {fmt.name} "
          f"(match ratio {ratio:.1%})", file=sys.stderr)
    if first_unmatched is not None:
        number, raw = first_unmatched
        print(f"  first unmatched, line {number}: {raw[:200]!r}\n  {explain(fmt, raw)}",
              file=sys.stderr)
    return 0 if unmatched < lines else 1     # nothing matched: a wrong format, say so


def _report_match(fmt, sample: list[bytes], path: str) -> None:
    ratio = match_ratio(fmt, sample)
    print(f"  matches {ratio:.1%} of the first {len(sample)} lines of {path}")
    failure = first_failure(fmt, sample)
    if failure is not None:
        index, line, why = failure
        print(f"  line {index + 1} does not match: {line[:120]!r}\n    {why}")


def _detect(args) -> int:
    sample = read_sample(args.file, args.lines, config_module.DEFAULT_MAX_LINE)
    print(f"{args.file}: {len(sample)} lines read")
    if not sample:
        print(f"no line to judge: the file is empty, or its lines are longer than "
              f"{config_module.DEFAULT_MAX_LINE} bytes (max_line_length)")
        return 1
    ranking = detect(sample, args.file)
    for name, ratio in ranking:
        print(f"  {name:<24} {ratio:7.1%}")
    best, ratio = ranking[0]
    tied = [name for name, other in ranking[1:] if other == ratio > 0]
    if tied:
        print(f"{best} and {', '.join(tied)} match the same lines; {best} is first "
              + ("by what the lines or the path show" if server_hint(sample, args.file)
                 else "by default: if an Apache wrote the log, use the apache_ format"))
    if ratio == 0:
        print("no built-in format matches: describe the log with log_format: (nginx) or "
              "apache_format: (Apache), or a regex:")
    else:
        print(f"best: format: {best}")
    if ratio < 1:
        _report_match(get_format(best), sample, args.file)
    return 0 if ratio > 0 else 1


def _demo(args) -> int:
    log.setup("WARNING")
    from .demo import run
    run(args.duration, args.dir)
    return 0


def _top(args) -> int:
    from . import top
    config = config_module.load(args.config)
    if args.once:
        top.once(config)
    elif not sys.stdout.isatty():
        raise ConfigError("plogd top: standard output is not a terminal; use --once")
    else:
        top.run(config, max(args.refresh, 0.1))
    return 0


def _plugins(args) -> int:
    logging.getLogger("plogd").addHandler(logging.NullHandler())   # listed below instead
    from . import plugins
    if args.json:
        found = plugins.as_json()
        print(json.dumps(found, indent=2))
        return 0 if all(e["error"] is None for e in found) else 1
    text, usable = plugins.listing()
    sys.stdout.write(text)
    return 0 if usable else 1


def _shipped(args) -> int:
    from .packaging import shipped_file, shipped_names
    try:
        for name in [args.name] if args.name else shipped_names():
            print(shipped_file(name))
    except FileNotFoundError as e:
        raise ConfigError(str(e)) from e
    return 0


def _manpage(args) -> int:
    from .clidoc import manpage
    files = [(config_module.DEFAULT_PATH, "the configuration"),
             ("/var/lib/plogd/results.jsonl", "the result file (the spool), one value a line"),
             ("/var/lib/plogd/checkpoint.json", "positions and open windows, for a restart"),
             ("/var/lib/plogd/send.json", "the sender's offset in the result file")]
    sys.stdout.write(manpage(parsers(), __version__, "web server logs to Zabbix metrics, per "
                             "time window, exactly once", EXIT_CODES, files))
    return 0


def _completion(args) -> int:
    from .clidoc import bash_completion, zsh_completion
    sys.stdout.write((bash_completion if args.shell == "bash" else zsh_completion)(parsers()))
    return 0


def _init(args) -> int:
    from . import init
    return init.run(args)

"""The man page and the bash/zsh completions, generated from the argparse definitions of
the command line (`plogd manpage`, `plogd completion bash|zsh`): a command or option added
to plogd.cli appears in them without another edit. Hand-written here rather than taken from
a library (argparse-manpage, shtab): plogd's commands are separate parsers picked by the
first word, and the generators are a page of code.

`tree` is what plogd.cli.parsers() returns: {"": the main parser, "check": its parser, …};
a command whose parser has argparse sub-commands (`zabbix template`) is walked into.
"""
from __future__ import annotations

import argparse
import shlex

# options whose value is a file or directory: completed with file names
PATH_METAVARS = {"FILE", "LOGFILE", "PATH", "DIR"}
PATH_DESTS = {"config", "pidfile", "log_file", "output", "dir", "file", "files", "logfiles"}


def commands(tree: dict[str, argparse.ArgumentParser]) -> list[tuple[str, argparse.ArgumentParser]]:
    """(command words, parser) of every command, sub-commands included, in order."""
    found = []

    def walk(words: str, parser: argparse.ArgumentParser) -> None:
        found.append((words, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(f"{words} {name}".strip(), sub)
    for words, parser in tree.items():
        walk(words, parser)
    return found


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings
            and not isinstance(a, argparse._SubParsersAction)]


def _help(action: argparse.Action) -> str:
    """The help text with its %(default)s and the like filled in, as --help shows it."""
    if not action.help:
        return ""
    params = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    if action.choices is not None:
        params["choices"] = ", ".join(map(str, action.choices))
    return action.help % params


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar:
        return action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper()


def _takes_path(action: argparse.Action) -> bool:
    return action.nargs != 0 and action.choices is None and (
        _metavar(action) in PATH_METAVARS or action.dest in PATH_DESTS)


# -- the man page --------------------------------------------------------------------------

def _roff(text: str) -> str:
    """Plain text as roff: backslashes and dashes escaped, no line read as a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line
                     for line in text.split("\n"))


def _paragraphs(text: str) -> str:
    """A description: indented lines kept as they are (.nf), the rest filled."""
    out = []
    for block in text.strip("\n").split("\n\n"):
        if block.startswith(" "):
            out += [".PP", ".nf", _roff(block), ".fi"]
        else:
            out += [".PP", _roff(" ".join(block.split()))]
    return "\n".join(out)


def _option_items(parser: argparse.ArgumentParser) -> list[str]:
    out = []
    for action in _positionals(parser) + _options(parser):
        name = ", ".join(action.option_strings) or _metavar(action)
        value = f" {_metavar(action)}" if action.option_strings and _metavar(action) else ""
        out += [".TP", f"\\fB{_roff(name)}\\fR\\fI{_roff(value)}\\fR", _roff(_help(action))]
    return out


def manpage(tree: dict[str, argparse.ArgumentParser], version: str, summary: str,
            exit_codes: list[tuple[int, str]], files: list[tuple[str, str]]) -> str:
    """plogd(1) in roff (man -l reads it; install as /usr/share/man/man1/plogd.1)."""
    main = tree[""]
    lines = [f'.TH PLOGD 1 "" "plogd {version}" "User Commands"', ".SH NAME",
             f"plogd \\- {_roff(summary)}", ".SH SYNOPSIS"]
    lines.append(".nf")
    for _, parser in commands(tree):     # a usage written by hand keeps its lines
        usage = parser.format_usage().removeprefix("usage: ")
        lines += [_roff(" ".join(line.split()))
                  for line in (usage.splitlines() if parser.usage else [usage])]
    lines += [".fi", ".SH DESCRIPTION", _paragraphs(main.description or ""),
              ".SH OPTIONS"] + _option_items(main)
    lines.append(".SH COMMANDS")
    for words, parser in commands(tree)[1:]:
        lines += [f".SS plogd {_roff(words)}", _paragraphs(parser.description or "")]
        lines += _option_items(parser)
    lines.append(".SH EXIT STATUS")
    for code, meaning in exit_codes:
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines.append(".SH FILES")
    for path, meaning in files:
        lines += [".TP", f"\\fI{_roff(path)}\\fR", _roff(meaning)]
    return "\n".join(lines) + "\n"


# -- shell completions ---------------------------------------------------------------------

def _words(tree) -> dict[str, dict]:
    """Per command ("" for the main one): its sub-commands, options, and which options take
    a file, one of fixed choices, or another value; whether its arguments are files."""
    table = {}
    every = commands(tree)
    for words, parser in every:
        options = _options(parser)
        table[words] = {
            "subs": [w.split()[-1] for w, _ in every if w and w.split()[:-1] == words.split()],
            "options": [o for a in options for o in a.option_strings],
            "choices": {o: [str(c) for c in a.choices] for a in options
                        if a.choices is not None and a.nargs != 0 for o in a.option_strings},
            "paths": [o for a in options if _takes_path(a) for o in a.option_strings],
            "values": [o for a in options if a.nargs != 0 and a.choices is None
                       and not _takes_path(a) for o in a.option_strings],
            "files": any(_takes_path(a) for a in _positionals(parser)),
            "arguments": [str(c) for a in _positionals(parser) if a.choices for c in a.choices]}
    return table


def bash_completion(tree) -> str:
    """`source <(plogd completion bash)`, or save it as
    /usr/share/bash-completion/completions/plogd."""
    table = _words(tree)
    levels, cases = [], []
    for words, entry in table.items():
        label = shlex.quote(words or "-")
        if entry["subs"]:
            levels.append(f"      {label}) subs_={shlex.quote(' '.join(entry['subs']))};;")
        lines = [f"    {label})"]
        for option, choices in entry["choices"].items():
            words_ = shlex.quote(" ".join(choices))
            lines.append(f"      [[ $prev == {option} ]] && words_={words_}")
        if entry["paths"]:
            lines.append(f"      case $prev in {'|'.join(entry['paths'])}) files_=1;; esac")
        if entry["values"]:            # a number, a name: nothing to offer
            lines.append(f"      case $prev in {'|'.join(entry['values'])}) return;; esac")
        if entry["files"]:
            lines.append("      [[ $cur != -* ]] && files_=1")
        words_ = shlex.quote(" ".join(entry["subs"] + entry["arguments"] + entry["options"]))
        lines += [f"      [[ -z $words_ ]] && words_={words_}", "      ;;"]
        cases.append("\n".join(lines))
    nl = "\n"
    return f"""# bash completion for plogd (generated by `plogd completion bash`)
_plogd() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
  local command_=- words_= files_= subs_ i
  for ((i = 1; i < COMP_CWORD; i++)); do      # the command words typed so far
    subs_=
    case $command_ in
{nl.join(levels)}
    esac
    [[ " $subs_ " == *" ${{COMP_WORDS[i]}} "* ]] || continue
    if [[ $command_ == - ]]; then command_=${{COMP_WORDS[i]}}
    else command_="$command_ ${{COMP_WORDS[i]}}"; fi
  done
  case $command_ in
{nl.join(cases)}
  esac
  if [[ -n $files_ ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words_" -- "$cur"))
  fi
}}
complete -o filenames -F _plogd plogd
"""


def zsh_completion(tree) -> str:
    """Save as _plogd in a directory of $fpath (e.g. /usr/share/zsh/vendor-completions)."""
    table = _words(tree)

    def spec(action) -> list[str]:
        text = _help(action).replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]")
        text = text.replace(":", "\\:")
        value = ""
        if action.nargs != 0:
            if action.choices is not None:
                value = f":{_metavar(action)}:({' '.join(map(str, action.choices))})"
            else:
                value = f":{_metavar(action)}:{'_files' if _takes_path(action) else ' '}"
        return [f"'{o}[{text}]{value}'" for o in action.option_strings]

    functions = []
    for words, parser in commands(tree):
        name = "_plogd" + "".join("_" + w.replace("-", "_") for w in words.split())
        args = [s for a in _options(parser) for s in spec(a)]
        subs = table[words]["subs"]
        if subs:
            args += [f"'1:command:({' '.join(subs)})'", "'*::argument:->sub'"]
            body = (f"  _arguments -C {' '.join(args)} && return\n"
                    f"  case $state in sub)\n"
                    f"    local f={name}_${{words[1]//-/_}}\n"
                    f"    (( $+functions[$f] )) && $f ;;\n  esac")
        else:
            if table[words]["files"]:
                args.append("'*:file:_files'")
            elif table[words]["arguments"]:
                args.append(f"'1:argument:({' '.join(table[words]['arguments'])})'")
            body = f"  _arguments {' '.join(args)}"
        functions.append(f"{name}() {{\n{body}\n}}")
    return "#compdef plogd\n# zsh completion for plogd (generated by `plogd completion zsh`)\n\n" \
        + "\n\n".join(functions) + '\n\n_plogd "$@"\n'

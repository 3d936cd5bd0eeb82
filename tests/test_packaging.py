"""Packaging and command-line conventions: the wheel ships the example configurations and
the systemd files; the man page and the bash/zsh completions are generated from the argparse
definitions (a command added to the CLI appears in them); exit codes are documented; a
mistyped command gets a suggestion; long replays show an ETA."""
import argparse
import io
import shutil
import subprocess
import sys
import zipfile

import pytest

from helpers import ROOT, plogd

from plogd import cli
from plogd.clidoc import bash_completion, commands, manpage, zsh_completion
from plogd.output import Progress
from plogd.packaging import shipped_file, shipped_names

SHIPPED = ["conf/apache.yaml", "conf/error-logs.yaml", "conf/json-logs.yaml", "conf/nginx.yaml",
           "conf/plogd.yaml", "systemd/plogd.service", "systemd/plogd.sysusers.conf"]


@pytest.mark.integration      # builds a wheel
def test_the_wheel_ships_the_configs_and_the_systemd_files(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    [wheel] = tmp_path.glob("plogd-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for name in SHIPPED:
            assert z.read(f"plogd/shipped/{name}") == (ROOT / name).read_bytes()


def test_shipped_file_finds_them_and_names_them_on_a_mistake():
    assert shipped_names() == SHIPPED
    assert open(shipped_file("systemd/plogd.service")).read() == \
        (ROOT / "systemd/plogd.service").read_text()
    with pytest.raises(FileNotFoundError, match="shipped: conf/apache.yaml, "):
        shipped_file("systemd/nope.service")
    out = plogd("shipped", "conf/nginx.yaml").stdout.decode().strip()
    assert open(out).read() == (ROOT / "conf/nginx.yaml").read_text()


def tree_with_a_nested_command():
    """The real command line plus a command with sub-commands, as `zabbix template` is."""
    tree = cli.parsers()
    zabbix = argparse.ArgumentParser(prog="plogd zabbix", description="Zabbix things.")
    sub = zabbix.add_subparsers(dest="action")
    template = sub.add_parser("template", description="Print a template.")
    template.add_argument("-o", "--output", metavar="FILE", help="where to write it")
    return {**tree, "zabbix": zabbix}


def test_man_page_has_every_command_option_and_exit_code():
    tree = tree_with_a_nested_command()
    page = manpage(tree, "1.0", "summary", cli.EXIT_CODES, [("/etc/plogd/plogd.yaml", "config")])
    for words, parser in commands(tree):
        if words:
            assert f".SS plogd {words}" in page
        for action in parser._actions:
            for option in action.option_strings:
                assert option.replace("-", "\\-") in page
    assert ".SS plogd zabbix template" in page and "where to write it" in page
    assert ".SH EXIT STATUS" in page and "RestartPreventExitStatus=2" in page
    if shutil.which("groff"):          # tests/run installs it; the text checks above stand anyway
        checked = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page.encode(),
                                 capture_output=True)
        assert checked.returncode == 0 and not checked.stderr, checked.stderr


def complete(script: str, line: str) -> list[str]:
    """What bash offers for the command line `line` (the cursor at its end)."""
    probe = (f'{script}\nread -ra COMP_WORDS <<< "$1"; [[ $1 == *" " ]] && COMP_WORDS+=("")\n'
             'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _plogd; printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", probe, "bash", line], capture_output=True, text=True,
                         check=True).stdout
    return out.split()


def test_bash_completion_completes_commands_options_choices_and_files(tmp_path):
    script = bash_completion(tree_with_a_nested_command())
    assert complete(script, "plogd ch") == ["check"]
    assert set(cli.COMMANDS) | {"zabbix", "--multi"} <= set(complete(script, "plogd "))
    assert complete(script, "plogd --log-level W") == ["WARNING"]
    assert complete(script, "plogd completion ") == ["bash", "zsh", "-h", "--help"]
    assert complete(script, "plogd zabbix t") == ["template"]
    assert complete(script, "plogd zabbix template --o") == ["--output"]
    assert complete(script, "plogd --workers ") == []
    (tmp_path / "plogd.yaml").write_text("")
    assert complete(script, f"plogd check -c {tmp_path}/plo") == [f"{tmp_path}/plogd.yaml"]
    assert complete(script, "plogd completion bash") == ["bash"]


def test_zsh_completion_defines_a_function_per_command():
    script = zsh_completion(tree_with_a_nested_command())
    assert script.startswith("#compdef plogd")
    for words, _ in commands(tree_with_a_nested_command()):
        assert "_plogd" + "".join("_" + w for w in words.split()) + "() {" in script
    if shutil.which("zsh"):            # tests/run installs it; the text checks above stand anyway
        checked = subprocess.run(["zsh", "-n"], input=script.encode(), capture_output=True)
        assert checked.returncode == 0, checked.stderr


def test_completion_and_manpage_commands_print_what_the_generators_make():
    assert plogd("completion", "bash").stdout.decode() == bash_completion(cli.parsers())
    assert plogd("manpage").stdout.decode().startswith(".TH PLOGD 1")


def test_help_lists_the_commands_and_the_exit_codes():
    text = plogd("--help").stdout.decode()
    assert text.startswith("usage: plogd [--single | --multi] [-c FILE] [options]\n"
                           f"       plogd {{{','.join(cli.COMMANDS)}}} ...")
    assert "exit status:" in text
    for code, _ in cli.EXIT_CODES:
        assert f"\n  {code:<4} " in text


def test_a_mistyped_command_gets_a_suggestion():
    result = plogd("chekc", "-c", "x.yaml", check=False)
    assert result.returncode == 2
    assert b"unknown command 'chekc'" in result.stderr and b"did you mean 'check'?" in result.stderr


def test_progress_bar_shows_an_eta():
    progress = Progress(100_000_000, io.StringIO())
    progress.done_bytes = 25_000_000
    assert progress.line(5.0).endswith(" 25.0%     5.0 MB/s  ETA 0:15")
    progress.done_bytes = 0
    assert progress.line(1.0).endswith("ETA --:--")

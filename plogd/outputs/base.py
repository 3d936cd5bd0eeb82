"""What an output is: the interface every output implements, built-in or plugin.

An output is small. The runner (plogd.outputs.runner) owns everything around it: the
cursor in the spool, batching, backoff and retries, the on_full policy and the
self-monitoring values `plogd.output.*[NAME]`.

A record is one value of one closed window, as it stands in the spool (the result file):

    {"host": "web01", "key": "nginx.status[200]", "clock": 1795976400, "ns": 0,
     "value": 12, "input": "nginx", "metric": "nginx.status", "group": {"status": 200}}

- `metric`: the metric's name (`name:` in the config; by default its key without the
  bracketed part and placeholders: `nginx.status[{status}]` -> `nginx.status`).
- `group`: the `by:` field and its value, absent when the metric has no `by:`; the value
  "other" stands for the groups beyond `top:`.
- `q`: the percentile (95, 99.9), present only on percentile values.
- `input`: the input's name; plogd's own values (`plogd.*`) carry `"input": "plogd"`, and
  those per input (`plogd.lines[nginx]`) also `"group": {"input": "nginx"}`.
- `key`: the series' key as the config's `key:` lays it out (the Zabbix item key).
- `clock`: the window's start (epoch seconds); `value`: int or float.

Subclass `Output`, set `type` and `OPTIONS`, implement `send`:

    class Stdout(Output):
        type = "stdout"
        OPTIONS = {"prefix": ""}
        async def send(self, records):
            for r in records:
                print(self.options["prefix"] + r["key"], r["value"])
            return []
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


REQUIRED = object()     # an option without a default: the config must give it


class OutputDown(Exception):
    """The receiver cannot be reached, or the exchange failed part-way: nothing of the
    batch counts as delivered. The runner sends the same batch again after a backoff."""


@dataclass
class OutputContext:
    """What an output may need to know of the daemon."""
    host: str                      # the host name the values are for
    state_dir: str                 # an output may keep a state file here, named after it
    interval: int                  # seconds per window
    inputs: list = field(default_factory=list)   # the config's inputs (name, metrics)


class Output:
    type: ClassVar[str] = ""       # the `type:` in the config
    # The keys the output accepts in its `outputs:` entry, with their defaults (REQUIRED:
    # no default). The runner's own keys (type, name, on_full, max_backlog, batch_size)
    # are not listed here.
    OPTIONS: ClassVar[dict[str, Any]] = {}

    def __init__(self, name: str, options: dict[str, Any], context: OutputContext):
        self.name = name           # unique among the outputs: the cursor and the log use it
        self.options = options     # OPTIONS with the config's values filled in, checked
        self.context = context

    @classmethod
    def check(cls, options: dict[str, Any]) -> None:
        """Raise ValueError("key: what is wrong, what is accepted") for a bad option value;
        the config loader adds the file and line."""

    @classmethod
    def configure(cls, section, host: str, ignore=()) -> dict[str, Any]:
        """The options of the output's entry in the config: OPTIONS with the config's
        values, checked (`section`: plogd.config's, it names file, line and key of a
        mistake; `ignore`: the runner's keys, read by the config). Override only for
        settings that OPTIONS cannot say (the Zabbix output's agent configuration)."""
        section.check_keys(list(ignore) + list(cls.OPTIONS))
        options = {}
        for key, default in cls.OPTIONS.items():
            if key in section.data:
                options[key] = section.data[key]
            elif default is REQUIRED:
                section.fail(None, f"missing required key {key!r} (an output of type "
                             f"{cls.type})")
            else:
                options[key] = default
        try:
            cls.check(options)
        except ValueError as e:
            key, _, message = str(e).partition(": ")
            if key in options and message:
                section.fail(key, message)
            section.fail(None, str(e))
        return options

    @classmethod
    def check_inputs(cls, config, place) -> None:
        """Refuse (place(i, j).fail(key, message)) what the inputs' metrics cannot be for
        this output, once the whole config is read; place(i, j): the section of
        inputs[i].metrics[j]."""

    async def open(self) -> None:
        """Connect, bind, start serving. May raise OutputDown: the runner retries."""

    async def send(self, records: list[dict]) -> list[dict]:
        """Deliver a batch. Returns the records the receiver refused (logged and counted by
        the runner, not sent again); raises OutputDown when nothing can be said of the
        batch. Blocking work belongs in `await asyncio.to_thread(...)`, so that a slow
        output never holds back another."""
        raise NotImplementedError

    async def tick(self) -> None:
        """Periodic work between batches (re-sends of its own, say); called after every
        batch and about every 0.5 s when nothing is new. May raise OutputDown."""

    async def close(self) -> None:
        """Flush and release. Called once, also after a failed open."""

    def legacy_cursor(self) -> dict | None:
        """Where an older plogd had got to in the spool ({"offset", "inode"}), read once when
        the output has no state file yet; None: from the start."""
        return None

    def __str__(self) -> str:
        return f"output {self.name} ({self.type})"

    def stats(self) -> dict[str, int | float]:
        """Extra self-monitoring values, sent as plogd.output.<name>[OUTPUT]."""
        return {}

"""The pipeline's wiring, in one place for both runners: `plogd --single` (plogd.runner,
every stage in one loop) and `plogd --multi` (plogd.supervisor, one process per stage)
build their stages with these functions, so a stage is set up the same way in both.

    reader --LineBatch--> parser(s) --Partial--> aggregator --commit--> writer
    writer --(the spool: result files)--> outputs (one process; asyncio, one task each)

The messages between the stages are in plogd.messages.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace

from . import checkpoint, spool, statedir
from .config import Config, ConfigError
from .files import Position
from .monitoring import Monitor
from .stages.aggregate import AggregateStage
from .stages.parse import ParseStage
from .stages.read import ReadStage
from .stages.write import WriteStage

_log = logging.getLogger("plogd")

IDLE_SLEEP = 0.2       # seconds between polls when no input has anything new


# -- the state to resume from --------------------------------------------------------------

def load_state(config: Config) -> tuple[dict | None, Config]:
    """The checkpoint to resume from (None: there is none) and the configuration to resume
    with. The state dir is proven writable first (ConfigError). A damaged checkpoint is moved
    aside, and every input starts where `damaged_checkpoint` says: by default at the end of
    its files, so that nothing is counted twice."""
    statedir.prepare(config.state_dir)
    path = config.checkpoint_path
    try:
        state = checkpoint.load(path)
        if state is not None:       # the shape: what the reader and the aggregator take
            positions_of(state)
            AggregateStage(config.inputs, config.interval, state=state)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        return None, _after_damage(config, e)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the checkpoint: {e.strerror}") from None
    if state is not None:
        _log.info("resuming from the checkpoint %s", path)
    return state, config


def _after_damage(config: Config, error: Exception) -> Config:
    import glob
    aside = checkpoint.move_aside(config.checkpoint_path)
    start = config.damaged_checkpoint
    if start == "end":
        cost = ("every input starts at the end of its files: the lines written since the "
                "last checkpoint and its open windows are not counted, nothing is counted twice")
    else:
        size = sum(os.path.getsize(p) for spec in config.inputs for p in glob.glob(spec.path)
                   if os.path.isfile(p))
        cost = (f"every input re-reads its files from the start, at most {size} bytes: what "
                "was counted before is counted again")
    _log.error("the checkpoint %s is damaged (%s: %s); it is kept as %s, and %s "
               "(damaged_checkpoint: %s)", config.checkpoint_path, type(error).__name__,
               error, aside, cost, start)
    return replace(config, inputs=[replace(spec, start=start) for spec in config.inputs])


def positions_of(state: dict | None) -> dict:
    return {name: {path: Position.from_json(p) for path, p in snap["positions"].items()}
            for name, snap in (state or {}).items()}


# -- the stages ----------------------------------------------------------------------------

def make_reader(config: Config, state: dict | None) -> ReadStage:
    return ReadStage(config.inputs, config.max_line_length, positions_of(state),
                     first_run=state is None)


def make_parser(config: Config) -> ParseStage:
    return ParseStage(config.inputs, config.interval, config.max_line_length)


def make_aggregator(config: Config, state: dict | None, reader_stats,
                    restarts: int = 0) -> AggregateStage:
    """`reader_stats`: a function giving the reader's latest counters (self-monitoring)."""
    outputs = (config.result_path, config.state_dir, config.outputs)
    return AggregateStage(config.inputs, config.interval, state=state,
                          monitor=Monitor(config.interval, reader_stats, restarts, outputs))


def make_writer(config: Config) -> WriteStage:
    """The result file is rotated only when outputs read it (and remove what they passed)."""
    return WriteStage(config.result_path, config.checkpoint_path, config.host,
                      rotate_bytes=config.result_rotate_bytes if config.outputs else 0)


def spool_full(config: Config, was_full: bool) -> bool:
    """Whether reading pauses: an output marked `on_full: pause` has `max_backlog` bytes
    not yet taken (the logs on disk are the buffer then; nothing is dropped). Logs each
    change. The same check in both runners, from the outputs' saved cursors."""
    full = spool.full_outputs(config.result_path, config.state_dir, config.outputs)
    if full and not was_full:
        _log.warning("the spool is full (output %s has max_backlog bytes not yet taken): "
                     "reading pauses until it takes them", ", ".join(full))
    elif was_full and not full:
        _log.warning("the spool has room again: reading goes on")
    return bool(full)


# -- the outputs ---------------------------------------------------------------------------

def make_output_runners(config: Config) -> list:
    """An OutputRunner per configured output (in the process that sends)."""
    from .outputs.base import OutputContext
    from .outputs.runner import OutputRunner
    from .plugins import output_types
    types = output_types()
    context = OutputContext(host=config.host, state_dir=config.state_dir,
                            interval=config.interval, inputs=config.inputs)
    return [OutputRunner(types[o.type](o.name, o.options, context), config.result_path,
                         config.state_dir, batch_size=o.batch_size, max_backlog=o.max_backlog,
                         on_full=o.on_full)
            for o in config.outputs]


async def send_stage(config: Config, stopped) -> None:
    """Drive every output until the event `stopped` is set (a threading or multiprocessing
    Event; then each output sends what is left once)."""
    import asyncio                  # only where outputs run: replays need no event loop
    from .outputs.runner import run_outputs
    runners = make_output_runners(config)
    stop = asyncio.Event()

    async def watch() -> None:
        # a thread that waits, a second at a time: if the outputs end on an error, the
        # event loop is not left waiting for a thread that waits for ever
        while not await asyncio.to_thread(stopped.wait, 1.0):
            pass
        stop.set()

    await asyncio.gather(watch(), run_outputs(runners, config.result_path, stop))


class OutputsThread:
    """--single: the send stage on a thread of its own, so that a slow output never holds
    back reading (and --single stays one process)."""

    def __init__(self, config: Config):
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(config,), name="outputs",
                                         daemon=True)
        self._thread.start()

    def _run(self, config: Config) -> None:
        try:
            import asyncio
            asyncio.run(send_stage(config, self._stop))
        except BaseException as e:        # noqa: BLE001 - reported by the main loop
            self._error = e

    def check(self) -> None:
        """Raise, in the main loop, what ended the send stage."""
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

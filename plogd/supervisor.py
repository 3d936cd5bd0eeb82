"""plogd --multi: one process per stage, under a supervisor.

    reader --LineBatch--> parser 1..N --Partial--> aggregator --Commit--> writer
    writer --(result file)--> outputs (zabbix, line, prometheus ...: one process)

The processes run the very stage objects `--single` runs; bounded queues connect them, so a
slow stage blocks the ones before it (backpressure) and memory stays bounded. Every process
is named for `ps` (setproctitle): "plogd: parser 1/2".

Failure: when a stage dies (an exception, SIGKILL), or stalls (alive but making no progress
for longer than its bound: a read blocked on a network file system, a send that never
returns, SIGSTOP; see plogd.heartbeat), the supervisor notices within a second, logs the
cause, stops the other stages and starts the whole pipeline again from the last checkpoint
— the messages in flight are simply read again, so the numbers stay exact. When it keeps
dying, restarts back off (1 s, 2 s, 4 s … 60 s). A stage dies with its supervisor
(the kernel's parent-death signal), so a killed plogd leaves no orphan stage behind.
systemd's watchdog (WATCHDOG=1) is fed only while no stage is stalled: a supervisor that
cannot end a stuck stage (uninterruptible I/O) stops feeding it, and systemd restarts plogd.

Signals: SIGTERM/SIGINT stop the reader; what it sent is parsed, merged and written; the
open windows go to the checkpoint for the next start; exit 0. SIGHUP re-reads the
configuration: a valid one replaces the pipeline the same way, an invalid one is logged and
the old one keeps running.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import time
from collections.abc import Callable

import setproctitle

from . import config as config_module
from . import systemd
from .config import Config, ConfigError
from .formats.compiled import log_status as log_speedup_status
from .heartbeat import Heartbeats, beat
from .messages import ReaderStats, Stop, Tick
from .pipeline import (IDLE_SLEEP, load_state, make_aggregator, make_parser, make_reader,
                       make_writer, send_stage, spool_full)
from .slots import BatchSlots
from .spool import disk_full
from .stages.aggregate import next_tick
from .stages.read import CHUNK
from .stages.write import DISK_RETRY, WriteStage, log_disk_full

_log = logging.getLogger("plogd.supervisor")
_mp = multiprocessing.get_context("fork")   # stages inherit the compiled formats

QUEUE_BATCHES = 4          # per parser: at most this many 1 MiB batches wait for parsing
STOP_TIMEOUT = 30.0        # seconds a graceful stop may take before stages are killed
BACKOFF_MAX = 60.0
SLOT_SLACK = 1 << 16       # a batch is a 1 MiB read plus the line it finished
STATS_EVERY = 1.0          # seconds between the reader's self-monitoring counts
BEAT_MAX = 2.0             # a stage waiting for work or for room beats at least this often
_beat_every = 0.5          # ... set in each stage process: a quarter of its stall_timeout


def _title(config: Config, role: str) -> str:
    name = os.path.basename(config.path)
    suffix = "" if name in ("plogd.yaml", "<embedded demo config>") else f" [{name}]"
    return f"plogd: {role}{suffix}"


# -- the stage processes ---------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def _put(q, message) -> None:
    """Put, beating while the queue is full: waiting for room is not stalling (the stage
    downstream, if stuck, is the one that stops beating)."""
    while True:
        try:
            q.put(message, timeout=_beat_every)
            return
        except queue.Full:
            beat()


def _get(q):
    """Get, beating while there is nothing to get."""
    while True:
        try:
            return q.get(timeout=_beat_every)
        except queue.Empty:
            beat()


def _stage(supervisor: int, heartbeats: Heartbeats, name: str, run, *args) -> None:
    """A stage process: it dies with its supervisor. Killed with SIGKILL, a supervisor cannot
    stop its stages, and orphans would go on reading and writing beside the next plogd."""
    signal.set_wakeup_fd(-1)                # the supervisor's, inherited
    # The supervisor decides when stages stop (a Ctrl-C reaches the whole process group;
    # under systemd, KillMode=mixed signals the supervisor alone); a SIGTERM sent to the
    # stage itself (multiprocessing, when the supervisor exits on an error) ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        _log.warning("prctl(PR_SET_PDEATHSIG) failed (%s): this stage would outlive a killed "
                     "supervisor", os.strerror(ctypes.get_errno()))
    if os.getppid() != supervisor:          # it died before prctl: nobody will send the signal
        os._exit(1)
    heartbeats.attach(name)
    global _beat_every       # every stage's first argument is its Config
    _beat_every = min(BEAT_MAX, args[0].stall_timeout / 4)   # idle: fewer wake-ups
    run(*args)


def _reader(config: Config, state, lines, slots: BatchSlots, stop_reading, workers: int,
            once: bool) -> None:
    setproctitle.setproctitle(_title(config, "reader"))
    read = make_reader(config, state)
    sent: dict = {}
    ticked, tick_at = None, 0.0     # idle: the `sent` of the last Tick, when the next is due
    last_stats, stats_sent = 0.0, None
    full, next_check, grown = False, 0.0, True   # grown: read since the last spool check
    try:
        while not stop_reading.is_set():
            beat()
            # the spool grows only with what is read: checked then, and while paused
            if config.outputs and (grown or full) and time.monotonic() >= next_check:
                full, grown = spool_full(config, full), False
                next_check = time.monotonic() + IDLE_SLEEP
            if full:           # no Tick either: windows must not close on unread lines
                stop_reading.wait(IDLE_SLEEP)
                continue
            if time.monotonic() - last_stats >= STATS_EVERY:
                stats = read.stats()
                if stats != stats_sent:      # an idle pipeline is not woken for nothing
                    _put(lines, ReaderStats(stats))
                    stats_sent = stats
                last_stats = time.monotonic()
            batches = read.poll()
            for batch in batches:
                _put(lines, slots.pack(batch))
                sent[batch.input, batch.path] = batch.seq
                grown = True
            if batches:
                continue
            if read.idle:
                if once:       # a last tick: the wall clock closes what is complete
                    _put(lines, Tick(time.time(), dict(sent)))
                    break
                now = time.time()
                if sent != ticked or now >= tick_at:     # else the Tick would change nothing
                    _put(lines, Tick(now, dict(sent)))
                    ticked, tick_at = dict(sent), next_tick(config.inputs, config.interval, now)
            slots.release_idle()
            stop_reading.wait(IDLE_SLEEP)
    finally:
        read.close()
        for _ in range(workers):
            _put(lines, Stop())


def _parser(config: Config, lines, slots: BatchSlots, partials, index: int, workers: int) -> None:
    setproctitle.setproctitle(_title(config, f"parser {index}/{workers}"))
    parse = make_parser(config)
    while True:
        message = _get(lines)
        beat()
        if isinstance(message, (Tick, ReaderStats, Stop)):
            _put(partials, message)
            if isinstance(message, Stop):
                return
            continue
        _put(partials, parse.handle(slots.unpack(message)))


def _aggregator(config: Config, state, partials, commits, workers: int, restarts: int) -> None:
    setproctitle.setproctitle(_title(config, "aggregator"))
    reader_stats: dict = {}        # the latest the reader sent
    aggregate = make_aggregator(config, state, lambda: reader_stats, restarts)
    stops = 0
    while stops < workers:
        beat()
        try:
            message = partials.get(timeout=aggregate.commit_due_in())
        except queue.Empty:        # nothing came; maybe a commit is due
            message = None
        if isinstance(message, Stop):
            stops += 1
        elif isinstance(message, Tick):
            aggregate.tick(message.now, message.sent)
        elif isinstance(message, ReaderStats):
            reader_stats = message.stats
        elif message is not None:
            aggregate.handle(message)
        due = aggregate.take_commit()
        if due is not None:
            _put(commits, due)
    _put(commits, aggregate.take_commit(force=True))
    _put(commits, Stop())


def _writer(config: Config, commits, sender_stop) -> None:
    setproctitle.setproctitle(_title(config, "writer"))
    write = make_writer(config)
    try:
        while True:
            message = _get(commits)
            if isinstance(message, Stop):
                return
            _commit_waiting(write, config.state_dir, message)
            beat()
    finally:
        write.close()
        sender_stop.set()           # all is written: the sender may finish


def _commit_waiting(write: WriteStage, state_dir: str, message) -> None:
    """A full disk blocks the writer, and through the full queues the stages before it,
    until there is room: no stage dies, so no restart loop."""
    refused = False
    while True:
        try:
            write.commit(*message)
        except OSError as e:
            if not disk_full(e):
                raise
            if not refused:
                log_disk_full(state_dir, e)
            refused = True
            time.sleep(DISK_RETRY)
            beat()          # waiting for room is not stalling
            continue
        if refused:
            _log.warning("%s takes writes again: reading goes on", state_dir)
        return


def _sender(config: Config, sender_stop) -> None:
    """Follows the spool and drives every output (asyncio, one task each); the writer says
    when all is written."""
    setproctitle.setproctitle(_title(config, "outputs"))
    asyncio.run(send_stage(config, sender_stop))


# -- the supervisor ----------------------------------------------------------------------

class Pipeline:
    """One set of stage processes and their queues."""

    def __init__(self, config: Config, workers: int, once: bool, restarts: int = 0):
        state, config = load_state(config)    # the state dir is writable, or ConfigError
        self.config = config
        self.workers = workers
        self.stop_reading = _mp.Event()
        lines = _mp.Queue(maxsize=QUEUE_BATCHES * workers)
        partials = _mp.Queue(maxsize=QUEUE_BATCHES * workers)
        commits = _mp.Queue(maxsize=16)
        # a slot for each batch the queue holds, each one being parsed, and the next one
        slots = BatchSlots(QUEUE_BATCHES * workers + workers + 1, CHUNK + SLOT_SLACK, _mp)
        sender_stop = _mp.Event()
        self.queues = [lines, partials, commits]
        # (name, the stage's function, its arguments): each runs in its own process
        stages: list[tuple[str, Callable[..., None], tuple[object, ...]]] = [
            ("reader", _reader, (config, state, lines, slots, self.stop_reading, workers, once))]
        stages += [(f"parser {i}/{workers}", _parser, (config, lines, slots, partials, i, workers))
                   for i in range(1, workers + 1)]
        stages += [("aggregator", _aggregator,
                    (config, state, partials, commits, workers, restarts)),
                   ("writer", _writer, (config, commits, sender_stop))]
        if config.outputs:                # no output, no sender
            stages.append(("outputs", _sender, (config, sender_stop)))
        self.heartbeats = Heartbeats([name for name, _, _ in stages], _mp)
        self.bounds = {name: stall_bound(name, config.stall_timeout) for name, _, _ in stages}
        self.processes = {name: _mp.Process(target=_stage, name=name, daemon=True,
                                            args=(os.getpid(), self.heartbeats, name, target,
                                                  *args))
                          for name, target, args in stages}
        for process in self.processes.values():
            process.start()

    def dead(self) -> list[str]:
        """Stages that exited before being asked to (with their exit status)."""
        return [f"{name} ({_status(p.exitcode)})" for name, p in self.processes.items()
                if not p.is_alive() and p.exitcode != 0]

    def stalled(self) -> list[str]:
        """Stages alive but silent for longer than their bound (stopped, or blocked)."""
        return [f"{name} (no progress for {seconds:.0f} s)"
                for name, seconds in self.heartbeats.stalled(self.bounds)
                if self.processes[name].is_alive()]

    def finished(self) -> bool:
        return all(not p.is_alive() for p in self.processes.values())

    def wait(self, timeout: float, *also: int) -> None:
        """Until a stage ends, one of `also` (file descriptors) is readable, or timeout."""
        sentinels = [p.sentinel for p in self.processes.values() if p.is_alive()]
        if not sentinels:          # all have ended: nothing to wait for
            return
        ready = multiprocessing.connection.wait(sentinels + list(also), timeout)
        for p in self.processes.values():
            if p.sentinel in ready:    # it is exiting: reap it, or is_alive() would still
                p.join()               # say yes for a moment, and the caller spin

    def stop(self) -> bool:
        """Graceful: stop reading, let the rest drain. False if it had to kill."""
        self.stop_reading.set()
        deadline = time.monotonic() + STOP_TIMEOUT
        while not self.finished() and time.monotonic() < deadline:
            if self.dead():
                break
            self.wait(0.2)
            systemd.watchdog()         # a stop may take up to STOP_TIMEOUT, past WatchdogSec
        graceful = self.finished() and not self.dead()
        self.kill()
        return graceful

    def kill(self) -> None:
        for p in self.processes.values():
            if p.is_alive():
                p.kill()
        for p in self.processes.values():
            p.join()
        for q in self.queues:
            q.cancel_join_thread()
            q.close()


def stall_bound(stage: str, stall_timeout: float) -> float:
    """How long a stage may go without a beat. Healthy, every stage beats at least every
    stall_timeout / 4 seconds (at most BEAT_MAX) but for one step: a 1 MiB batch parsed, a
    commit fsynced — or, for the outputs, a whole exchange with Zabbix (several round trips,
    each up to its timeout), hence twice the bound."""
    return 2 * stall_timeout if stage == "outputs" else stall_timeout


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _status(exitcode: int | None) -> str:
    if exitcode is None:
        return "running"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


class Supervisor:
    def __init__(self, config: Config, workers: int, once: bool = False):
        self.config = config
        self.workers = workers
        self.once = once
        self.restarts = 0
        self._signal: int | None = None
        self._failures: list[float] = []    # when recent restarts happened
        self.status = systemd.Status(config)   # STATUS= for `systemctl status`

    def run(self) -> int:
        setproctitle.setproctitle(_title(self.config, "supervisor"))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        woken, wake = os.pipe()          # a signal ends the wait below at once
        for fd in (woken, wake):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake)
        log_speedup_status(_log)
        pipeline = self._start()
        systemd.notify("READY=1")
        while True:
            pipeline.wait(1.0, woken)
            _drain(woken)
            stalled = pipeline.stalled()
            if not stalled:     # systemd's watchdog sees the pipeline move, not only us
                systemd.watchdog()
            self.status.update(f"restarts {self.restarts}; " if self.restarts else "")
            if self._signal in (signal.SIGTERM, signal.SIGINT):
                systemd.notify("STOPPING=1")
                _log.info("stopping: reading stops, what was read is written, open windows "
                          "go to the checkpoint")
                return 0 if pipeline.stop() else 1
            if self._signal == signal.SIGHUP:
                self._signal = None
                pipeline = self._reload(pipeline)
                continue
            dead = pipeline.dead()
            if dead:
                pipeline = self._recover(pipeline, dead, "died")
            elif stalled:
                pipeline = self._recover(pipeline, stalled, "stalled")
            elif self.once and pipeline.finished():
                pipeline.kill()
                return 0

    def _on_signal(self, signum, frame) -> None:
        self._signal = signum

    def _start(self) -> Pipeline:
        _log.info("plogd --multi: %d input(s), %d parser(s), results in %s",
                  len(self.config.inputs), self.workers, self.config.result_path)
        return Pipeline(self.config, self.workers, self.once, self.restarts)

    def _recover(self, pipeline: Pipeline, stages: list[str], what: str) -> Pipeline:
        self.restarts += 1
        now = time.monotonic()
        self._failures = [t for t in self._failures if now - t < 300] + [now]
        delay = min(2.0 ** (len(self._failures) - 1), BACKOFF_MAX) if len(self._failures) > 1 else 0
        _log.error("stage %s %s; restarting the pipeline from the last checkpoint%s "
                   "(restart %d)", ", ".join(stages), what, f" in {delay:g} s" if delay else "",
                   self.restarts)
        systemd.notify(f"STATUS=restarting the pipeline (restart {self.restarts}): stage "
                       f"{', '.join(stages)} {what}")      # for `systemctl status`
        pipeline.kill()         # SIGKILL ends a stopped or blocked stage too
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and self._signal is None:
            time.sleep(0.1)
            systemd.watchdog()         # the backoff may last longer than WatchdogSec
        return self._start()

    def _reload(self, pipeline: Pipeline) -> Pipeline:
        systemd.notify("RELOADING=1")
        try:
            new = config_module.load(self.config.path)
        except ConfigError as e:
            _log.error("SIGHUP: the new configuration is not valid, keeping the old one: %s", e)
            systemd.notify("READY=1")
            return pipeline
        _log.info("SIGHUP: applying the new configuration %s", new.path)
        pipeline.stop()
        self.config = new
        self.status = systemd.Status(new)
        new_pipeline = self._start()
        systemd.notify("READY=1")
        return new_pipeline


def run_multi(config: Config, workers: int, once: bool = False) -> int:
    return Supervisor(config, workers, once).run()

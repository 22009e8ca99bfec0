"""Run the plan: every arm for every seed, each run its own trainer process, supervised.

A process per run gives each one fresh framework state (global seeds, MindSpore's context, the oneDNN
cap that would slow torch) and makes it resumable on its own. The trainers' output goes to
``RUN/train.log``; the console gets a line as each run starts and ends, and live progress of every
run in flight: on a terminal a bar per run, elsewhere (a pipe, CI, ``| tee``) a line per finished
epoch, each named by its run.

Each trainer is started through :mod:`~msport.reproduce.guard`, so it stops when reproduce dies, and
is stopped the way its launcher can pass on: SIGTERM, a grace period, then SIGKILL (torchrun and msrun
forward a SIGTERM to their ranks; a SIGKILL would leave the ranks running, holding the run's lock).
"""

import dataclasses
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from msport.errors import UserError
from msport.reproduce.config import FINISHED, INTERRUPTED, find_trainers, plan_runs, read_outcome, run_state
from msport.reproduce.launch import Launch, Slots, append_rank_logs, guarded, in_shard, run_command, slot_env
from msport.environment import usable_cpus
from msport.training.config import save_resolved, threads_matter

#: Lines of a failed run's log shown on the console.
FAILED_LOG_TAIL = 20
#: How often the console's progress looks at a running trainer's metrics.csv.
EPOCH_POLL_SECONDS = 2.0
#: How long a trainer (or its launcher, passing the signal to its ranks) gets to stop after SIGTERM.
STOP_GRACE_SECONDS = 15.0


def run_all(cfg, launch=Launch()):
    """Train every planned run of this invocation's shard that is not finished, ``launch.parallel_runs`` at
    a time; a :class:`RunOutcome` per finished run (other shards' runs too, once finished), in plan order.

    The first failure stops new runs from starting; the runs already going finish, then it is raised.
    """
    launch.check()
    trainers = find_trainers()
    runs = plan_runs(cfg)
    states = [run_state(run) for run in runs]  # every folder checked before anything trains
    _note_shared_cores(runs, launch)
    slots, stop, failures = Slots(launch.parallel_runs), threading.Event(), []
    interrupted = threading.Event()  # set when this process is interrupted: the runs in flight are stopped too
    positions = shard_positions(runs)
    ended = {(run.arm.name, run.seed): threading.Event() for run in runs}

    def one(number, run, state):
        try:
            return _one(number, run, state)
        finally:
            ended[run.arm.name, run.seed].set()

    def _one(number, run, state):
        tag = f"[{number}/{len(runs)}] {run.label}"
        if state == FINISHED:
            outcome = read_outcome(run)
            say(f"{tag}: finished earlier, best {outcome.best_val_acc:.2f}% at epoch {outcome.best_epoch}; skipped")
            return outcome
        if not in_shard(positions[number - 1], launch) or stop.is_set():
            return None
        if run.arm.start_from:
            source = ended.get((run.arm.start_from, run.seed))
            if source is not None:
                source.wait()  # an earlier run of the plan, started before this one whatever --parallel-runs
            if stop.is_set():
                return None
            if not os.path.isfile(run.config.init_from):
                stop.set()
                failures.append(UserError(
                    f"run {run.label} starts from the {run.arm.start_from} run's initial weights, "
                    f"{run.config.init_from}, which do not exist: train that arm too (--arms {run.arm.start_from} "
                    f"{run.arm.name})"))
                return None
        log = os.path.join(run.path, "train.log")
        done = len(run.folder().completed_epochs()) if state == INTERRUPTED else 0
        say(f"{tag}: " + (f"resuming after epoch {done}" if state == INTERRUPTED else "training") +
            f" ({run.config.epochs} epochs; log {log})")
        start = time.perf_counter()
        slot = slots.take()
        try:
            _train(run, trainers, log, resume=state == INTERRUPTED, launch=launch, slot=slot, cancel=interrupted)
        except UserError as exc:
            stop.set()
            failures.append(exc)
            return None
        finally:
            slots.give(slot)
        outcome = read_outcome(run)
        say(f"{tag}: done in {time.perf_counter() - start:.0f} s, best {outcome.best_val_acc:.2f}% at epoch "
            f"{outcome.best_epoch}, final {outcome.final_val_acc:.2f}%")
        return outcome

    pool = ThreadPoolExecutor(max_workers=launch.parallel_runs)
    try:
        outcomes = list(pool.map(one, range(1, len(runs) + 1), runs, states))
    except BaseException:  # Ctrl-C (or a SIGINT sent to us alone) reaches only this thread: stop every run in flight
        stop.set()
        interrupted.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    if failures:
        raise failures[0]
    return [o for o in outcomes if o is not None]


def shard_positions(runs):
    """Each run's plan position for ``--shard``, a run that starts from another's weights taking its source's,
    so the two always train in one invocation, in plan order."""
    index = {(run.arm.name, run.seed): i for i, run in enumerate(runs)}
    positions = []
    for run in runs:
        source = (run.arm.start_from, run.seed)
        positions.append(positions[index[source]] if source in index else len(positions))
    return positions


def _note_shared_cores(runs, launch):
    """CPU runs keep their thread count whatever the placement (it changes what they compute): say when
    several at once ask for more threads than there are cores, which slows them but changes nothing."""
    counts = [run.config.threads for run in runs if threads_matter(run.config) and run.config.threads]
    cores = usable_cpus()
    wanted = launch.parallel_runs * launch.nproc_per_run * max(counts, default=0)
    if launch.parallel_runs > 1 and wanted > cores:
        say(f"note: {launch.parallel_runs} runs at once x {launch.nproc_per_run} rank(s) x {max(counts)} threads on "
            f"{cores} cores: each CPU run keeps its thread count, so results equal one-at-a-time runs, only "
            f"slower; set train: threads: (part of what a run is) to share the cores")


def say(line):
    print(line, flush=True)  # a piped stdout (CI, make demo | tee) would hold progress lines back until the end


def _train(run, trainers, log, resume, launch=Launch(), slot=0, cancel=None):
    os.makedirs(run.path, exist_ok=True)
    # The trainer reads its settings from this file and writes its resolved copy to config.yaml,
    # which is what a rerun checks the request against.
    request = os.path.join(run.path, "request.yaml")
    save_resolved(dataclasses.replace(run.config, resume=resume), request)
    command = run_command(run, trainers, request, launch)
    env = slot_env(run.config.device, slot, launch, threads=run.config.threads)
    placed = " ".join(f"{k}={env[k]}" for k in ("CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "OMP_NUM_THREADS")
                      if k in env and env[k] != os.environ.get(k))
    with open(log, "a") as fh:
        fh.write(f"# msport reproduce, {time.strftime('%Y-%m-%d %H:%M:%S')}: {placed + ' ' if placed else ''}"
                 f"{' '.join(command)}\n")
        fh.flush()
        code = _run_with_progress(guarded(command), fh, run, env=env, slot=slot, cancel=cancel)
    append_rank_logs(run, log)
    if code != 0:
        with open(log) as fh:
            tail = fh.readlines()[-FAILED_LOG_TAIL:]
        print(f"--- last lines of {log} ---\n{''.join(tail).rstrip()}\n---", file=sys.stderr)
        if code < 0:  # killed, not crashed: the finished epochs are safe
            raise UserError(f"run {run.label} was stopped by signal {-code}; its log is {log}; "
                            f"rerun the same command to continue it")
        raise UserError(f"run {run.label} failed (exit {code}); its log is {log}")


def _run_with_progress(command, log, run, env=None, slot=0, cancel=None):
    """Run the trainer and show its finished epochs (read from metrics.csv) while it runs: a bar on a
    terminal, otherwise a line per epoch naming the run. Any exit of ours stops it: an exception in this
    thread, or ``cancel`` set by the main thread, which is the one a Ctrl-C interrupts."""
    folder = run.folder()
    shown = len(folder.completed_epochs())
    with subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=env) as process, \
            tqdm(total=run.config.epochs, initial=shown, desc=f"  {run.label}", unit="epoch", file=sys.stderr,
                 disable=None, leave=False, dynamic_ncols=True, position=slot) as bar:
        try:
            while True:
                try:
                    code = process.wait(timeout=EPOCH_POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    code = None
                rows = folder.completed_epochs()
                for row in rows[shown:]:
                    if bar.disable:
                        say(f"  {run.label}: epoch {row['epoch']}/{run.config.epochs}  val acc "
                            f"{row['val_acc']:.2f}%  {row['seconds']:.1f}s")
                    else:
                        bar.set_postfix_str(f"val acc {row['val_acc']:.2f}%", refresh=False)
                        bar.update(1)
                shown = max(shown, len(rows))
                if code is not None:
                    return code
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt
        except BaseException:  # Ctrl-C included: never leave a trainer running behind us
            stop(process)
            raise


def stop(process, grace=STOP_GRACE_SECONDS):
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL: torchrun and msrun pass a SIGTERM on to their
    ranks, and cannot pass on a SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

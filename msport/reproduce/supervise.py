"""Run the plan: every arm for every seed, each run its own trainer process, supervised.

A process per run gives each one fresh framework state (global seeds, MindSpore's context, the oneDNN
cap that would slow torch) and makes it resumable on its own. The trainers' output goes to
``RUN/train.log``; the console gets one line as each run starts and one as it ends; on a terminal a
bar between them counts its epochs.
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
from msport.reproduce.launch import Launch, append_rank_logs, die_with_parent, Slots, in_shard, run_command, slot_env
from msport.training.config import save_resolved

#: Lines of a failed run's log shown on the console.
FAILED_LOG_TAIL = 20
#: How often the console's epoch bar looks at a running trainer's metrics.csv.
EPOCH_POLL_SECONDS = 2.0


def run_all(cfg, launch=Launch()):
    """Train every planned run of this invocation's shard that is not finished, ``launch.parallel_runs`` at
    a time; a :class:`RunOutcome` per finished run (other shards' runs too, once finished), in plan order.

    The first failure stops new runs from starting; the runs already going finish, then it is raised.
    """
    launch.check()
    trainers = find_trainers()
    runs = plan_runs(cfg)
    states = [run_state(run) for run in runs]  # every folder checked before anything trains
    slots, stop, failures = Slots(launch.parallel_runs), threading.Event(), []

    def one(number, run, state):
        tag = f"[{number}/{len(runs)}] {run.label}"
        if state == FINISHED:
            outcome = read_outcome(run)
            say(f"{tag}: finished earlier, best {outcome.best_val_acc:.2f}% at epoch {outcome.best_epoch}; skipped")
            return outcome
        if not in_shard(number - 1, launch) or stop.is_set():
            return None
        log = os.path.join(run.path, "train.log")
        done = len(run.folder().completed_epochs()) if state == INTERRUPTED else 0
        say(f"{tag}: " + (f"resuming after epoch {done}" if state == INTERRUPTED else "training") +
            f" ({run.config.epochs} epochs; log {log})")
        start = time.perf_counter()
        slot = slots.take()
        try:
            _train(run, trainers, log, resume=state == INTERRUPTED, launch=launch, slot=slot)
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

    with ThreadPoolExecutor(max_workers=launch.parallel_runs) as pool:
        outcomes = list(pool.map(one, range(1, len(runs) + 1), runs, states))
    if failures:
        raise failures[0]
    return [o for o in outcomes if o is not None]


def say(line):
    print(line, flush=True)  # a piped stdout (CI, make demo | tee) would hold progress lines back until the end


def _train(run, trainers, log, resume, launch=Launch(), slot=0):
    os.makedirs(run.path, exist_ok=True)
    # The trainer reads its settings from this file and writes its resolved copy to config.yaml,
    # which is what a rerun checks the request against.
    request = os.path.join(run.path, "request.yaml")
    save_resolved(dataclasses.replace(run.config, resume=resume), request)
    command = run_command(run, trainers, request, launch)
    env = slot_env(run.config.device, slot, launch)
    placed = " ".join(f"{k}={env[k]}" for k in ("CUDA_VISIBLE_DEVICES", "ASCEND_RT_VISIBLE_DEVICES", "OMP_NUM_THREADS")
                      if k in env and env[k] != os.environ.get(k))
    with open(log, "a") as fh:
        fh.write(f"# msport reproduce, {time.strftime('%Y-%m-%d %H:%M:%S')}: {placed + ' ' if placed else ''}"
                 f"{' '.join(command)}\n")
        fh.flush()
        code = _run_with_epoch_bar(command, fh, run, env=env, preexec_fn=die_with_parent(os.getpid()))
    append_rank_logs(run, log)
    if code != 0:
        with open(log) as fh:
            tail = fh.readlines()[-FAILED_LOG_TAIL:]
        print(f"--- last lines of {log} ---\n{''.join(tail).rstrip()}\n---", file=sys.stderr)
        if code < 0:  # killed, not crashed: the finished epochs are safe
            raise UserError(f"run {run.label} was stopped by signal {-code}; its log is {log}; "
                            f"rerun the same command to continue it")
        raise UserError(f"run {run.label} failed (exit {code}); its log is {log}")


def _run_with_epoch_bar(command, log, run, env=None, preexec_fn=None):
    """Run the trainer; on a terminal, a bar on stderr counts its finished epochs (read from metrics.csv)."""
    folder = run.folder()
    with subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                          preexec_fn=preexec_fn) as process, \
            tqdm(total=run.config.epochs, initial=len(folder.completed_epochs()), desc=f"  {run.label}",
                 unit="epoch", file=sys.stderr, disable=None, leave=False, dynamic_ncols=True) as bar:
        try:
            while True:
                try:
                    return process.wait(timeout=EPOCH_POLL_SECONDS)
                except subprocess.TimeoutExpired:
                    bar.update(len(folder.completed_epochs()) - bar.n)
        except BaseException:  # Ctrl-C included: never leave a trainer running behind us
            process.kill()
            raise

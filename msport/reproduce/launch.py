"""How one ``msport reproduce`` invocation starts its runs: several at once, several ranks per run, several
invocations (nodes); each run's command line, environment and device slot. None of it changes what a run
computes."""

import os
import shutil
import sys
import threading
from dataclasses import dataclass
from typing import Tuple

from msport.errors import UserError
from msport.training.parallel import free_port, launch_command, launcher_env

# -- several runs at once, several ranks per run, several invocations (nodes) ------------------

@dataclass(frozen=True)
class Launch:
    """How one ``msport reproduce`` invocation starts its runs; none of it changes what a run computes.

    ``parallel_runs`` runs at once, each on its own device(s) (CUDA_VISIBLE_DEVICES /
    ASCEND_RT_VISIBLE_DEVICES) or, on the CPU, its own share of the cores (OMP_NUM_THREADS);
    ``nproc_per_run`` ranks per run through torchrun / msrun; ``shard`` (I, N): this invocation trains
    the runs whose plan position is I modulo N, so N invocations on N nodes share one output folder.
    """

    parallel_runs: int = 1
    nproc_per_run: int = 1
    shard: Tuple[int, int] = (0, 1)

    def check(self):
        index, count = self.shard
        if self.parallel_runs < 1 or self.nproc_per_run < 1:
            raise UserError(f"--parallel-runs and --nproc-per-run must be at least 1; got {self.parallel_runs} "
                            f"and {self.nproc_per_run}")
        if count < 1 or not 0 <= index < count:
            raise UserError(f"--shard {index}/{count}: expected I/N with 0 <= I < N, e.g. --shard 0/4")
        return self


def parse_shard(text):
    """``"I/N"`` -> (I, N); a one-line error otherwise."""
    index, sep, count = str(text).partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()):
        raise UserError(f"--shard {text!r}: expected I/N, this invocation's index (from 0) and the number of "
                        f"invocations, e.g. --shard 0/4 (SLURM: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return int(index), int(count)


def in_shard(position, launch):
    index, count = launch.shard
    return position % count == index


def run_command(run, trainers, request, launch):
    """The trainer's argv: plain python, or torchrun / msrun with ``nproc_per_run`` ranks."""
    script = os.path.join(trainers, run.arm.script)
    if launch.nproc_per_run == 1:
        return [sys.executable, script, "--config", request]
    return launch_command(script, launch.nproc_per_run, framework=run.arm.framework, port=free_port(),
                          log_dir=os.path.join(run.path, "rank_logs")) + ["--config", request]


def slot_env(device, slot, launch, env=None, threads=None):
    """The environment of the run in ``slot`` (0 .. parallel_runs - 1): its devices, and its CPU threads.

    ``threads``: the run's own count (a CPU run's, fixed by the plan whatever the placement, since it
    changes what the run computes); without one each rank gets an equal share of the cores.
    """
    env = launcher_env(env)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if launch.parallel_runs == 1 and launch.nproc_per_run == 1:
        return env
    kind = device.split(":")[0].lower()
    visible = {"cuda": "CUDA_VISIBLE_DEVICES", "gpu": "CUDA_VISIBLE_DEVICES", "ascend": "ASCEND_RT_VISIBLE_DEVICES"}
    if kind in visible:
        name = visible[kind]
        known = env.get(name)
        devices = known.split(",") if known else [str(i) for i in range(launch.parallel_runs * launch.nproc_per_run)]
        first = slot * launch.nproc_per_run
        mine = devices[first:first + launch.nproc_per_run]
        if len(mine) < launch.nproc_per_run:
            raise UserError(f"--parallel-runs {launch.parallel_runs} x --nproc-per-run {launch.nproc_per_run} needs "
                            f"{launch.parallel_runs * launch.nproc_per_run} devices; {name} lists {len(devices)}")
        env[name] = ",".join(mine)
    if not threads:  # each rank of each concurrent run gets an equal share of the host's cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (launch.parallel_runs * launch.nproc_per_run)))
    return env


def append_rank_logs(run, log):
    """msrun's workers write their output to ``RUN/rank_logs/worker_N.log``: keep one log per run."""
    rank_logs = os.path.join(run.path, "rank_logs")
    if not os.path.isdir(rank_logs):
        return
    with open(log, "a") as fh:
        for name in sorted(os.listdir(rank_logs)):
            fh.write(f"# --- {name} ---\n")
            with open(os.path.join(rank_logs, name), errors="replace") as part:
                fh.writelines(line for line in part if not line.startswith(("[INFO]", "[WARNING] DISTRIBUTED")))
    shutil.rmtree(rank_logs, ignore_errors=True)


class Slots:
    """The device slots of concurrent runs: a run takes a free one and gives it back when it ends."""

    def __init__(self, count):
        self._free = list(range(count))
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            return self._free.pop(0)

    def give(self, slot):
        with self._lock:
            self._free.append(slot)
            self._free.sort()


def guarded(command, parent=None):
    """``command`` started through :mod:`msport.reproduce.guard`, so that it stops when ``parent`` (this
    process) dies, even by SIGKILL: a trainer left running unseen would keep its run folder locked."""
    guard = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guard.py")
    return [sys.executable, guard, str(parent or os.getpid()), *command]

"""Plan and run the reproduction: every arm for every seed, each run its own trainer process.

A run is ``train_torch.py`` or ``train_ms.py`` launched with a YAML file of
TrainConfig keys, writing into ``OUTPUT/runs/{arm}-seed{seed}/``. A process
per run gives each one fresh framework state (global seeds, MindSpore's
context, the oneDNN cap that would slow torch) and makes it resumable on its
own: a rerun skips finished runs, continues interrupted ones with
``--resume``, and refuses a folder whose run was trained with other settings
rather than mix the two.
The trainers' output goes to ``RUN/train.log``; the console gets one line as
each run starts and one as it ends; on a terminal a bar between them counts its epochs.
"""

import ctypes
import dataclasses
import os
import signal
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Tuple

from tqdm import tqdm

import msport
from msport.errors import UserError
from msport.training.config import (FIELDS, TrainConfig, check_model, from_mapping, load_resolved, read_mapping,
                                    save_resolved)
from msport.training.parallel import free_port, launch_command, launcher_env
from msport.training.run import FINISHED as RUN_FINISHED, RESUMABLE, Run


@dataclass(frozen=True)
class Arm:
    name: str
    script: str
    framework: str       # the launcher that starts it on several ranks: torch (torchrun) or mindspore (msrun)
    init: Optional[str]  # train_ms.py's --init; None for the torch reference
    resume_file: str     # as the trainer's side module names it (importing it would load the framework here)
    description: str


ARMS = {arm.name: arm for arm in (
    Arm("torch", "train_torch.py", "torch", None, "resume.pth", "PyTorch reference"),
    Arm("ms_legacy", "train_ms.py", "mindspore", "legacy", "resume.ckpt",
        "MindSpore, MindSpore 1.x default init (Normal(0.01), zero bias): the seed's before"),
    Arm("ms_parity", "train_ms.py", "mindspore", "torch", "resume.ckpt",
        "MindSpore, parity init (torch's kaiming-uniform): the seed's after"),
)}

#: TrainConfig keys that reproduce sets for each run; a ``train:`` mapping may not set them.
PER_RUN_KEYS = ("seed", "init", "device", "output_dir", "resume", "progress", "world_size")
#: TrainConfig keys that may differ between a run folder and the request: they do not change what is computed
#: (world_size: a run may resume at another number of ranks, as the trainers allow).
NOT_IDENTITY_KEYS = ("resume", "output_dir", "progress", "num_workers", "keep_checkpoint_max", "threads",
                     "world_size", "ckpt_prefix")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: Lines of a failed run's log shown on the console.
FAILED_LOG_TAIL = 20
#: How often the console's epoch bar looks at a running trainer's metrics.csv.
EPOCH_POLL_SECONDS = 2.0


@dataclass
class ReproduceConfig:
    train: dict                       # TrainConfig keys shared by every run
    seeds: List[int]
    arms: List[str] = dataclasses.field(default_factory=lambda: list(ARMS))
    output_dir: str = os.path.join("runs", "reproduce")
    torch_device: str = "cpu"
    ms_device: str = "cpu"


REPRODUCE_KEYS = tuple(f.name for f in dataclasses.fields(ReproduceConfig))


@dataclass(frozen=True)
class PlannedRun:
    arm: Arm
    seed: int
    config: TrainConfig  # exactly what the trainer is asked to run

    @property
    def path(self):
        return self.config.output_dir

    @property
    def label(self):
        return f"{self.arm.name} seed {self.seed}"

    def folder(self):
        """The trainer's view of the run folder (metrics, best.json, resume file)."""
        return Run(self.path, self.config, self.arm.resume_file)


@dataclass(frozen=True)
class RunOutcome:
    arm: str
    seed: int
    path: str
    val_acc: List[float]   # per epoch, 1-based epochs in order
    best_epoch: int
    best_val_acc: float
    train_seconds: float   # the trainer's own epoch times, summed (startup and compile excluded)

    @property
    def final_val_acc(self):
        return self.val_acc[-1]


# -- configuration ---------------------------------------------------------------------------

def load_config(path, seeds=None, epochs=None, output_dir=None, arms=None):
    """The reproduce YAML, then command-line overrides; every key and value checked."""
    data = read_mapping(path, REPRODUCE_KEYS, "configs/reproduce_digits.yaml",
                        " (TrainConfig keys go under train:)")
    for key in ("train", "seeds"):
        if key not in data:
            raise UserError(f"config file {path}: missing key {key}")
    overrides = {"seeds": seeds, "output_dir": output_dir, "arms": arms}
    data.update({k: v for k, v in overrides.items() if v is not None})
    if not isinstance(data["train"], dict):
        raise UserError(f"config file {path}: train must be a mapping of TrainConfig keys")
    if epochs is not None:
        data["train"] = {**data["train"], "epochs": epochs}
    cfg = ReproduceConfig(**data)
    _check(cfg, path)
    return cfg


def _check(cfg, path):
    def need(ok, message):
        if not ok:
            raise UserError(f"config file {path}: {message}")

    unknown = sorted(set(cfg.train) - set(FIELDS))
    need(not unknown, f"train: unknown key(s) {', '.join(unknown)}; valid keys: "
                      f"{', '.join(k for k in FIELDS if k not in PER_RUN_KEYS)}")
    per_run = sorted(set(cfg.train) & set(PER_RUN_KEYS))
    need(not per_run, f"train: {', '.join(per_run)} set by reproduce for each run; use seeds, arms, "
                      f"output_dir, torch_device and ms_device (and --nproc-per-run for world_size) instead")
    need(isinstance(cfg.seeds, list) and cfg.seeds and all(_has_type(s, int) and s >= 0 for s in cfg.seeds),
         f"seeds must be a list of integers such as [0, 1], got {cfg.seeds!r}")
    need(len(set(cfg.seeds)) == len(cfg.seeds), f"seeds {cfg.seeds} repeat a seed")
    need(isinstance(cfg.arms, list) and cfg.arms and all(a in ARMS for a in cfg.arms),
         f"arms must be a list drawn from {', '.join(ARMS)}, got {cfg.arms!r}")
    need(len(set(cfg.arms)) == len(cfg.arms), f"arms {cfg.arms} repeat an arm")
    for key in ("output_dir", "torch_device", "ms_device"):
        need(isinstance(getattr(cfg, key), str), f"{key} must be a string, got {getattr(cfg, key)!r}")
    try:  # types, ranges and the model name fail here, not in the first run
        from_mapping(cfg.train)
        import reference_torch

        check_model(TrainConfig(**cfg.train), reference_torch.list_models())
    except UserError as exc:
        need(False, f"train: {exc}")


def _has_type(value, annotation):
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


# -- plan ------------------------------------------------------------------------------------

def plan_runs(cfg):
    """Seed-major order, so an interrupted reproduction has every arm at the same number of seeds."""
    runs = []
    for seed in cfg.seeds:
        for name in cfg.arms:
            arm = ARMS[name]
            train = dict(cfg.train, seed=seed, progress=False,
                         device=cfg.torch_device if arm.init is None else cfg.ms_device,
                         output_dir=os.path.join(cfg.output_dir, "runs", f"{name}-seed{seed}"))
            if arm.init is not None:
                train["init"] = arm.init
            runs.append(PlannedRun(arm, seed, TrainConfig(**train)))
    return runs


def find_trainers():
    """The folder holding train_torch.py and train_ms.py: the checkout msport is installed from."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(msport.__file__)))
    missing = [arm.script for arm in ARMS.values() if not os.path.isfile(os.path.join(root, arm.script))]
    if missing:
        raise UserError(f"{' and '.join(sorted(set(missing)))} not found in {root}: msport reproduce runs the "
                        f"repository's trainers, so run it from a checkout installed with pip install -e .")
    return root


# -- state of a run folder -------------------------------------------------------------------

FINISHED, INTERRUPTED, NEW = "finished", "interrupted", "new"


def run_state(run):
    """FINISHED, INTERRUPTED (resumable) or NEW; a folder trained with other settings is an error."""
    config_file = os.path.join(run.path, "config.yaml")
    if os.path.isfile(config_file):
        saved = load_resolved(config_file)
        changed = [k for k in FIELDS if k not in NOT_IDENTITY_KEYS and getattr(saved, k) != getattr(run.config, k)]
        if changed:
            raise UserError(f"{run.path} holds a run with " + ", ".join(
                f"{k} {getattr(saved, k)!r} (requested {getattr(run.config, k)!r})" for k in changed) +
                "; pass another --output-dir, or delete that folder to retrain it")
    state, _ = run.folder().state()  # the trainer's own reading of the folder (msport/training/run.py)
    return {RUN_FINISHED: FINISHED, RESUMABLE: INTERRUPTED}.get(state, NEW)


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


def slot_env(device, slot, launch, env=None):
    """The environment of the run in ``slot`` (0 .. parallel_runs - 1): its devices or its CPU threads."""
    env = launcher_env(env)
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
    else:  # the CPU: each rank of each concurrent run gets an equal share of the cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (launch.parallel_runs * launch.nproc_per_run)))
    return env


def _append_rank_logs(run, log):
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


class _Slots:
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


def missing_runs(cfg, outcomes):
    """Labels of planned runs with no finished outcome (other shards' runs, not yet trained)."""
    done = {(o.arm, o.seed) for o in outcomes}
    return [run.label for run in plan_runs(cfg) if (run.arm.name, run.seed) not in done]


# -- running ---------------------------------------------------------------------------------

def run_all(cfg, launch=Launch()):
    """Train every planned run of this invocation's shard that is not finished, ``launch.parallel_runs`` at
    a time; a :class:`RunOutcome` per finished run (other shards' runs too, once finished), in plan order.

    The first failure stops new runs from starting; the runs already going finish, then it is raised.
    """
    launch.check()
    trainers = find_trainers()
    runs = plan_runs(cfg)
    states = [run_state(run) for run in runs]  # every folder checked before anything trains
    slots, stop, failures = _Slots(launch.parallel_runs), threading.Event(), []

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
        code = _run_with_epoch_bar(command, fh, run, env=env, preexec_fn=_die_with_parent(os.getpid()))
    _append_rank_logs(run, log)
    if code != 0:
        with open(log) as fh:
            tail = fh.readlines()[-FAILED_LOG_TAIL:]
        print(f"--- last lines of {log} ---\n{''.join(tail).rstrip()}\n---", file=sys.stderr)
        if code < 0:  # killed, not crashed: the finished epochs are safe
            raise UserError(f"run {run.label} was stopped by signal {-code}; its log is {log}; "
                            f"rerun the same command to continue it")
        raise UserError(f"run {run.label} failed (exit {code}); its log is {log}")


def _die_with_parent(parent):
    """A ``preexec_fn`` that makes the trainer stop when this process dies (Linux ``PR_SET_PDEATHSIG``).

    Without it a trainer whose ``msport reproduce`` was killed trains on, unseen; the run folder's lock
    then refuses the rerun's trainer rather than let both write it. Elsewhere it does nothing.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def arm():
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return arm


def with_other_finished_runs(cfg, outcomes):
    """``(cfg, outcomes)`` widened to every finished run in the output folder trained with these settings.

    So ``--arms torch`` (or fewer ``--seeds``) rerun in a folder of three arms reports all three, rather
    than replace the full report with a partial one.
    """
    planned = {(o.arm, o.seed) for o in outcomes}
    runs_dir = os.path.join(cfg.output_dir, "runs")
    found = []
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
        arm, sep, seed = name.rpartition("-seed")
        if not sep or arm not in ARMS or not seed.isdigit() or (arm, int(seed)) in planned:
            continue
        run = plan_runs(dataclasses.replace(cfg, seeds=[int(seed)], arms=[arm]))[0]
        try:
            if run_state(run) == FINISHED:
                found.append(read_outcome(run))
        except UserError:  # trained with other settings: not part of this comparison
            continue
    if not found:
        return cfg, outcomes
    arms = [a for a in ARMS if a in cfg.arms or any(o.arm == a for o in found)]
    seeds = sorted(set(cfg.seeds) | {o.seed for o in found})
    everything = sorted(outcomes + found, key=lambda o: (seeds.index(o.seed), arms.index(o.arm)))
    return dataclasses.replace(cfg, arms=arms, seeds=seeds), everything


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


def read_outcome(run):
    folder = run.folder()
    rows = folder.completed_epochs()
    best = folder.best()
    return RunOutcome(arm=run.arm.name, seed=run.seed, path=run.path, val_acc=[r["val_acc"] for r in rows],
                      best_epoch=best["epoch"], best_val_acc=best["val_acc"],
                      train_seconds=sum(r["seconds"] for r in rows))


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

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import List, Optional

from tqdm import tqdm

import msport
from msport.errors import UserError
from msport.training.config import FIELDS, TrainConfig, load_resolved, read_mapping, save_resolved, validate
from msport.training.run import Run


@dataclass(frozen=True)
class Arm:
    name: str
    script: str
    init: Optional[str]  # train_ms.py's --init; None for the torch reference
    resume_file: str     # as the trainer's side module names it (importing it would load the framework here)
    description: str


ARMS = {arm.name: arm for arm in (
    Arm("torch", "train_torch.py", None, "resume.pth", "PyTorch reference"),
    Arm("ms_legacy", "train_ms.py", "legacy", "resume.ckpt",
        "MindSpore, MindSpore 1.x default init (Normal(0.01), zero bias): the seed's before"),
    Arm("ms_parity", "train_ms.py", "torch", "resume.ckpt",
        "MindSpore, parity init (torch's kaiming-uniform): the seed's after"),
)}

#: TrainConfig keys that reproduce sets for each run; a ``train:`` mapping may not set them.
PER_RUN_KEYS = ("seed", "init", "device", "output_dir", "resume", "progress")
#: TrainConfig keys that may differ between a run folder and the request: they do not change what is computed.
NOT_IDENTITY_KEYS = ("resume", "output_dir", "progress", "num_workers", "keep_checkpoint_max", "ckpt_prefix")
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
                      f"output_dir, torch_device and ms_device instead")
    for key, value in cfg.train.items():
        need(_has_type(value, FIELDS[key].type), f"train: {key} {value!r} is not a {_type_name(FIELDS[key].type)}")
    need(isinstance(cfg.seeds, list) and cfg.seeds and all(_has_type(s, int) for s in cfg.seeds),
         f"seeds must be a list of integers such as [0, 1], got {cfg.seeds!r}")
    need(len(set(cfg.seeds)) == len(cfg.seeds), f"seeds {cfg.seeds} repeat a seed")
    need(isinstance(cfg.arms, list) and cfg.arms and all(a in ARMS for a in cfg.arms),
         f"arms must be a list drawn from {', '.join(ARMS)}, got {cfg.arms!r}")
    need(len(set(cfg.arms)) == len(cfg.arms), f"arms {cfg.arms} repeat an arm")
    for key in ("output_dir", "torch_device", "ms_device"):
        need(isinstance(getattr(cfg, key), str), f"{key} must be a string, got {getattr(cfg, key)!r}")
    try:
        validate(TrainConfig(**cfg.train))  # bad values (schedule, epochs...) fail here, not in the first run
    except UserError as exc:
        need(False, f"train: {exc}")


def _has_type(value, annotation):
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == Optional[str]:
        return value is None or isinstance(value, str)
    if annotation == List[int]:
        return isinstance(value, list) and all(_has_type(v, int) for v in value)
    return not isinstance(annotation, type) or isinstance(value, annotation)  # unchecked: a kind not seen yet


def _type_name(annotation):
    return {Optional[str]: "string or null", List[int]: "list of integers"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


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
    folder = run.folder()
    if len(folder.completed_epochs()) >= run.config.epochs and folder.best() is not None:
        return FINISHED
    if os.path.isfile(folder.resume_file):
        return INTERRUPTED
    return NEW


def _clear_unfinished_first_epoch(run):
    """A process killed during epoch 1 may leave metrics without a resume file: the trainer neither
    resumes nor restarts such a folder, and nothing in it is worth keeping."""
    folder = run.folder()
    for path in (folder.metrics_file, folder.best_file):
        if os.path.exists(path):
            os.remove(path)
    shutil.rmtree(folder.checkpoint_dir, ignore_errors=True)


# -- running ---------------------------------------------------------------------------------

def run_all(cfg):
    """Train every planned run that is not finished; a :class:`RunOutcome` per run, in plan order."""
    trainers = find_trainers()
    runs = plan_runs(cfg)
    states = [run_state(run) for run in runs]  # every folder checked before anything trains
    outcomes = []
    for number, (run, state) in enumerate(zip(runs, states), start=1):
        tag = f"[{number}/{len(runs)}] {run.label}"
        if state == FINISHED:
            outcome = read_outcome(run)
            say(f"{tag}: finished earlier, best {outcome.best_val_acc:.2f}% at epoch {outcome.best_epoch}; skipped")
        else:
            log = os.path.join(run.path, "train.log")
            done = len(run.folder().completed_epochs()) if state == INTERRUPTED else 0
            say(f"{tag}: " + (f"resuming after epoch {done}" if state == INTERRUPTED else "training") +
                f" ({run.config.epochs} epochs; log {log})")
            if state == NEW:
                _clear_unfinished_first_epoch(run)
            start = time.perf_counter()
            _train(run, trainers, log, resume=state == INTERRUPTED)
            outcome = read_outcome(run)
            say(f"{tag}: done in {time.perf_counter() - start:.0f} s, best {outcome.best_val_acc:.2f}% at epoch "
                f"{outcome.best_epoch}, final {outcome.final_val_acc:.2f}%")
        outcomes.append(outcome)
    return outcomes


def say(line):
    print(line, flush=True)  # a piped stdout (CI, make demo | tee) would hold progress lines back until the end


def _train(run, trainers, log, resume):
    os.makedirs(run.path, exist_ok=True)
    # The trainer reads its settings from this file and writes its resolved copy to config.yaml,
    # which is what a rerun checks the request against.
    request = os.path.join(run.path, "request.yaml")
    save_resolved(dataclasses.replace(run.config, resume=resume), request)
    command = [sys.executable, os.path.join(trainers, run.arm.script), "--config", request]
    with open(log, "a") as fh:
        fh.write(f"# msport reproduce, {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n")
        fh.flush()
        code = _run_with_epoch_bar(command, fh, run)
    if code != 0:
        with open(log) as fh:
            tail = fh.readlines()[-FAILED_LOG_TAIL:]
        print(f"--- last lines of {log} ---\n{''.join(tail).rstrip()}\n---", file=sys.stderr)
        if code < 0:  # killed, not crashed: the finished epochs are safe
            raise UserError(f"run {run.label} was stopped by signal {-code}; its log is {log}; "
                            f"rerun the same command to continue it")
        raise UserError(f"run {run.label} failed (exit {code}); its log is {log}")


def _run_with_epoch_bar(command, log, run):
    """Run the trainer; on a terminal, a bar on stderr counts its finished epochs (read from metrics.csv)."""
    folder = run.folder()
    with subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL) as process, \
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

"""The reproduce config and its arms, the plan of runs, and what a run folder holds.

A run is ``train_torch.py`` or ``train_ms.py`` given a YAML file of TrainConfig keys, writing into
``OUTPUT/runs/{arm}-seed{seed}/``. A rerun skips finished runs, continues interrupted ones with
``--resume``, and refuses a folder whose run was trained with other settings rather than mix the two.
Nothing here starts a process: :mod:`~msport.reproduce.supervise` does.
"""

import dataclasses
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import msport
from msport.errors import UserError
from msport.training.config import (FIELDS, MINDSPORE, TORCH, TrainConfig, check_model, default_threads, from_mapping,
                                    load_resolved, read_mapping, threads_matter)
from msport.training.run import FINISHED as RUN_FINISHED, RESUMABLE, RESUME_FILES, Run


#: The trainer of each framework; an arm names its framework, which also picks torchrun or msrun for several ranks.
TRAINER_SCRIPTS = {"torch": TORCH, "mindspore": MINDSPORE}


@dataclass(frozen=True)
class Arm:
    """One arm of a reproduction: a trainer and the TrainConfig keys it sets over the shared ``train:``.

    ``start_from``: another arm whose run of the same seed this one starts from (that run's
    ``initial.pth``/``.ckpt``, converted by the trainer's ``init_from``), so the two differ by framework
    alone and not by their initial draw: their difference is judged per seed (a paired interval).
    ``case_study``: the case study's single number for this arm, where it has one.
    """

    name: str
    framework: str
    description: str = ""
    train: dict = dataclasses.field(default_factory=dict, hash=False)
    start_from: Optional[str] = None
    case_study: Optional[float] = None

    @property
    def script(self):
        return TRAINER_SCRIPTS[self.framework]

    @property
    def resume_file(self):
        return RESUME_FILES[self.framework]


#: The arms of a config whose ``arms:`` is a list of names (configs/reproduce_digits.yaml): the case study's.
ARMS = {arm.name: arm for arm in (
    Arm("torch", "torch", "PyTorch, PyTorch defaults: the reference", case_study=92.58),
    Arm("ms_legacy", "mindspore",
        "MindSpore, MindSpore 1.x defaults (Normal(0.01) weights, zero bias): the port before the fix",
        {"init": "legacy"}, case_study=91.96),
    Arm("ms_parity", "mindspore",
        "MindSpore, PyTorch defaults (kaiming-uniform weights and bias): the port after the fix",
        {"init": "torch"}, case_study=92.98),
    Arm("ms_paired", "mindspore",
        "MindSpore, PyTorch defaults, each seed starting from the torch run's own initial weights (converted): "
        "the framework alone, without the luck of the initial draw", {"init": "torch"}, start_from="torch"),
)}
#: What a config without ``arms:`` runs: the case study's three (ms_paired is asked for by name).
DEFAULT_ARMS = ("torch", "ms_legacy", "ms_parity")
ARM_KEYS = tuple(f.name for f in dataclasses.fields(Arm) if f.name != "name")

#: TrainConfig keys that reproduce sets for each run; a ``train:`` mapping may not set them (an arm's may set init).
PER_RUN_KEYS = ("seed", "init", "init_from", "device", "output_dir", "resume", "progress", "world_size")
ARM_SETS = ("init",)
#: TrainConfig keys that may differ between a run folder and the request: they do not change what is computed
#: (world_size: a run may resume at another number of ranks, as the trainers allow; threads: only off the CPU,
#: see threads_matter).
NOT_IDENTITY_KEYS = ("resume", "output_dir", "progress", "num_workers", "keep_checkpoint_max", "threads",
                     "world_size", "ckpt_prefix")


@dataclass
class ReproduceConfig:
    train: dict                       # TrainConfig keys shared by every run
    seeds: List[int]
    # the arms to run: names of ARMS, or (in the YAML) a mapping name -> Arm keys defining them
    arms: List[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_ARMS))
    output_dir: str = os.path.join("runs", "reproduce")
    torch_device: str = "cpu"
    ms_device: str = "cpu"
    title: Optional[str] = None       # the setting as the report names it (default: model on data)
    definitions: Dict[str, Arm] = dataclasses.field(default_factory=lambda: dict(ARMS))  # not a YAML key

    def arm(self, name):
        return self.definitions[name]


REPRODUCE_KEYS = tuple(f.name for f in dataclasses.fields(ReproduceConfig) if f.name != "definitions")


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
    overrides = {"seeds": seeds, "output_dir": output_dir}  # arms: below, once the config's definitions are read
    data.update({k: v for k, v in overrides.items() if v is not None})
    if not isinstance(data["train"], dict):
        raise UserError(f"config file {path}: train must be a mapping of TrainConfig keys")
    if epochs is not None:
        data["train"] = {**data["train"], "epochs": epochs}
    if isinstance(data.get("arms"), dict):  # the config defines its own arms, in the order given
        data["definitions"] = _definitions(data["arms"], path)
        data["arms"] = list(data["definitions"])
    if arms is not None:
        data["arms"] = arms
    cfg = ReproduceConfig(**data)
    _check(cfg, path)
    return cfg


def _definitions(mapping, path):
    """``arms:`` as a mapping: name -> {framework, description, train, start_from, case_study}."""
    out = {}
    for name, keys in mapping.items():
        where = f"config file {path}: arms: {name}"
        if not isinstance(name, str) or not isinstance(keys, dict):
            raise UserError(f"{where}: each arm must be a name mapped to its keys ({', '.join(ARM_KEYS)})")
        unknown = sorted(map(str, set(keys) - set(ARM_KEYS)))
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(ARM_KEYS)}")
        if keys.get("framework") not in TRAINER_SCRIPTS:
            raise UserError(f"{where}: framework must be one of {', '.join(TRAINER_SCRIPTS)}, got "
                            f"{keys.get('framework')!r}")
        if not isinstance(keys.get("train", {}), dict) or not isinstance(keys.get("description", ""), str):
            raise UserError(f"{where}: train must be a mapping of TrainConfig keys and description a string")
        if not (keys.get("case_study") is None or _has_type(keys["case_study"], float)
                or _has_type(keys["case_study"], int)):
            raise UserError(f"{where}: case_study must be a number, got {keys['case_study']!r}")
        start = keys.get("start_from")
        if start is not None and start not in out:
            raise UserError(f"{where}: start_from {start!r} must name an arm defined before it "
                            f"({', '.join(out) or 'none yet'})")
        out[name] = Arm(name, **keys)
    return out


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
    need(isinstance(cfg.arms, list) and cfg.arms and all(a in cfg.definitions for a in cfg.arms),
         f"arms must be a list drawn from {', '.join(cfg.definitions)}, got {cfg.arms!r}")
    need(len(set(cfg.arms)) == len(cfg.arms), f"arms {cfg.arms} repeat an arm")
    for key in ("output_dir", "torch_device", "ms_device"):
        need(isinstance(getattr(cfg, key), str), f"{key} must be a string, got {getattr(cfg, key)!r}")
        need("\0" not in getattr(cfg, key), f"{key} holds a NUL character ({getattr(cfg, key)!r}); remove it")
    need(cfg.title is None or isinstance(cfg.title, str), f"title must be a string, got {cfg.title!r}")
    try:  # types, ranges and the model name fail here, not in the first run
        from_mapping(cfg.train)
    except UserError as exc:
        need(False, f"train: {exc}")
    for name in cfg.arms:
        arm = cfg.arm(name)
        unknown = sorted(set(arm.train) - set(FIELDS))
        need(not unknown, f"arms: {name}: train: unknown key(s) {', '.join(unknown)}")
        per_run = sorted((set(arm.train) & set(PER_RUN_KEYS)) - set(ARM_SETS))
        need(not per_run, f"arms: {name}: train: {', '.join(per_run)} set by reproduce for each run (start_from "
                          f"sets init_from)")
        try:  # the shared train: passed above, so a failure here is the arm's own keys
            merged = from_mapping(arm_train(cfg, name))
        except UserError as exc:
            need(False, f"arms: {name}: train: {exc}")
        try:
            check_model(merged, arm.framework)
        except UserError as exc:  # named where the model was written: the arm's train or the shared one
            need(False, f"{f'arms: {name}: ' if 'model' in arm.train else ''}train: {exc}")


def arm_train(cfg, name):
    """The TrainConfig keys of arm ``name``'s runs, before reproduce's per-run keys."""
    return {**cfg.train, **cfg.arm(name).train}


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
            arm = cfg.arm(name)
            train = dict(arm_train(cfg, name), seed=seed, progress=False, output_dir=run_folder(cfg, name, seed),
                         device=cfg.torch_device if arm.framework == "torch" else cfg.ms_device)
            if arm.start_from:
                train["init_from"] = initial_weights(cfg, arm.start_from, seed)
            if train.get("threads") is None and threads_matter(TrainConfig(device=train["device"])):
                train["threads"] = default_threads()  # whatever --parallel-runs: it is part of what a run computes
            runs.append(PlannedRun(arm, seed, TrainConfig(**train)))
    return runs


def run_folder(cfg, arm, seed):
    return os.path.join(cfg.output_dir, "runs", f"{arm}-seed{seed}")


def initial_weights(cfg, arm, seed):
    """The file holding the weights arm ``arm``'s run of ``seed`` started from (its trainer writes it)."""
    return Run(run_folder(cfg, arm, seed), None, cfg.arm(arm).resume_file).initial_path


def find_trainers():
    """The folder holding train_torch.py and train_ms.py: the checkout msport is installed from."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(msport.__file__)))
    missing = [script for script in TRAINER_SCRIPTS.values() if not os.path.isfile(os.path.join(root, script))]
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
        checked = [k for k in FIELDS if k not in NOT_IDENTITY_KEYS]
        if threads_matter(saved) and saved.threads is not None:
            checked.append("threads")
        changed = [k for k in checked if getattr(saved, k) != getattr(run.config, k)]
        if changed:
            raise UserError(f"{run.path} holds a run with " + ", ".join(
                f"{k} {getattr(saved, k)!r} (requested {getattr(run.config, k)!r})" for k in changed) +
                "; pass another --output-dir, or delete that folder to retrain it")
    state, _ = run.folder().state()  # the trainer's own reading of the folder (msport/training/run.py)
    return {RUN_FINISHED: FINISHED, RESUMABLE: INTERRUPTED}.get(state, NEW)


def missing_runs(cfg, outcomes):
    """Labels of planned runs with no finished outcome (other shards' runs, not yet trained)."""
    done = {(o.arm, o.seed) for o in outcomes}
    return [run.label for run in plan_runs(cfg) if (run.arm.name, run.seed) not in done]


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
        if not sep or arm not in cfg.definitions or not seed.isdigit() or (arm, int(seed)) in planned:
            continue
        run = plan_runs(dataclasses.replace(cfg, seeds=[int(seed)], arms=[arm]))[0]
        try:
            if run_state(run) == FINISHED:
                found.append(read_outcome(run))
        except UserError:  # trained with other settings: not part of this comparison
            continue
    if not found:
        return cfg, outcomes
    arms = [a for a in cfg.definitions if a in cfg.arms or any(o.arm == a for o in found)]
    seeds = sorted(set(cfg.seeds) | {o.seed for o in found})
    everything = sorted(outcomes + found, key=lambda o: (seeds.index(o.seed), arms.index(o.arm)))
    return dataclasses.replace(cfg, arms=arms, seeds=seeds), everything


def read_outcome(run):
    folder = run.folder()
    rows = folder.completed_epochs()
    best = folder.best()
    return RunOutcome(arm=run.arm.name, seed=run.seed, path=run.path, val_acc=[r["val_acc"] for r in rows],
                      best_epoch=best["epoch"], best_val_acc=best["val_acc"],
                      train_seconds=sum(r["seconds"] for r in rows))

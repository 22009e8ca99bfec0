"""One configuration for both trainers: YAML file -> command-line overrides -> resolved copy in the run.

Each key of :class:`TrainConfig` is declared once, with its type, default,
help line, choices, range and the programs that use it; the flags, ``--help``
and the checks are all read from that declaration. Every value from the file,
``--set`` or a flag is checked for type and range before anything is written,
and unknown keys are errors, so a typo never silently trains with a default.
"""

import argparse
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

import yaml

from msport.data import DATASETS
from msport.environment import usable_cpus
from msport.errors import UserError, first_line
from msport.files import atomic_write_text
from msport.training.recipe import OPTIMIZERS
from msport.training.schedule import EPOCH_COUNT_DEPENDENT, SCHEDULES

PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
DATA_SOURCES = DATASETS
DATA_CLASSES = {"cifar10": 10, "digits": 10, "digits_tokens": 10}
INITS = ("torch", "legacy", "mindspore")
MODES = ("graph", "pynative")
MS_RECIPES = ("msport", "mindspore")

# The programs that read the config; each lists only the flags it uses (YAML files may hold any key).
TORCH, MINDSPORE, PARITY = "train_torch.py", "train_ms.py", "parity-train"
TRAINERS = (TORCH, MINDSPORE)
ALL = (TORCH, MINDSPORE, PARITY)


def option(default, help, *, choices=None, min=None, above=None, max=None, below=None, used_by=ALL,
           metavar=None):
    """A config key: its default, one help line, its allowed values and the programs that take it as a flag."""
    meta = dict(help=help, choices=choices, min=min, above=above, max=max, below=below, used_by=used_by,
                metavar=metavar)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # model
    model: str = option("resnet18", "the model: a zoo name (resnet10_w16, resnet18, resnet50...), port:DIR (a "
                                    "folder msport port wrote) or module:callable (your own builder)")
    num_classes: int = option(10, "classifier outputs; at least the data set's classes", min=1)
    init: str = option("torch", "MindSpore init scheme: torch (PyTorch defaults), legacy (MindSpore 1.x defaults), "
                                "mindspore (the installed version's)", choices=INITS, used_by=(MINDSPORE,))
    init_from: Optional[str] = option(None, "start from these weights (.pth or .ckpt, converted as needed)",
                                      used_by=TRAINERS, metavar="FILE")
    # data
    data: str = option("digits", "data set: digits (embedded, offline, as 32x32 images), digits_tokens (the same "
                                 "digits as 64 pixel tokens 0..16), cifar10, or (parity-train) "
                                 "module:callable returning (inputs, targets) numpy batches, token ids too",
                       metavar="SOURCE")
    data_dir: Optional[str] = option(None, "folder holding cifar-10-batches-py/ or cifar-10-batches-bin/",
                                     metavar="DIR")
    download: bool = option(False, "fetch CIFAR-10 into --data-dir when it is missing")
    deterministic: bool = option(False, "no shuffle, no crop or flip: every epoch sees the same batches",
                                 used_by=TRAINERS)
    num_workers: int = option(0, "data loader worker processes (batches cost ~2 ms of numpy: workers only "
                                 "compete with compute on a small machine)", min=0, used_by=TRAINERS)
    # optimisation: torch's optimizer on both sides (msport.optim on MindSpore), weight decay on every parameter
    epochs: int = option(10, "epochs to train", min=1, used_by=TRAINERS)
    batch_size: int = option(128, "images per step", min=1)
    optimizer: str = option("sgd", "torch optimizer (msport.optim on MindSpore)", choices=tuple(OPTIMIZERS))
    lr: float = option(0.1, "peak learning rate", above=0)
    momentum: float = option(0.9, "SGD momentum", min=0, below=1)
    weight_decay: float = option(5e-4, "weight decay on every parameter, BatchNorm's included (L2; decoupled "
                                       "for adamw)", min=0)
    nesterov: bool = option(False, "Nesterov momentum (sgd)")
    betas: List[float] = option([0.9, 0.999], "Adam-family betas", metavar="BETA")
    eps: Optional[float] = option(None, "optimizer eps (default: torch's for the optimizer)", above=0, metavar="EPS")
    label_smoothing: float = option(0.0, "cross-entropy label smoothing", min=0, below=1)
    clip_grad_norm: Optional[float] = option(None, "clip the gradients' total 2-norm to this (torch's "
                                                   "clip_grad_norm_)", above=0, metavar="NORM")
    ms_recipe: str = option("msport", "MindSpore's optimizer, loss and clipping: msport (torch's semantics: "
                                      "msport.optim, the registry's CrossEntropyLoss, msport.optim.clip_grad_norm) or "
                                      "mindspore (its built-ins as its docs write them: the optimizer's look-alike "
                                      "in msport/optim/catalog.py, nn.CrossEntropyLoss, ops.clip_by_global_norm)",
                            choices=MS_RECIPES, used_by=(MINDSPORE,))
    schedule: str = option("cosine", "learning-rate schedule (per step; onecycle and linear as torch's "
                                     "OneCycleLR / LinearLR to 0)", choices=SCHEDULES)
    milestones: List[int] = option([], "epochs at which multistep multiplies the rate by gamma", metavar="EPOCH")
    step_size: int = option(30, "epochs between step's multiplications by gamma", min=1)
    gamma: float = option(0.1, "factor of the step and multistep schedules", above=0)
    warmup_epochs: int = option(0, "epochs of linear per-step warm-up before the schedule", min=0)
    # run
    seed: int = option(0, "seed of the weights, the batch order and the augmentation", min=0, max=2 ** 32 - 1)
    device: str = option("cpu", {TORCH: "device: cpu or cuda[:N]", MINDSPORE: "device: cpu, gpu or ascend",
                                 PARITY: "device of both frameworks: cpu (or cuda/gpu where each has one)"})
    threads: Optional[int] = option(None, "intra-op threads of the framework(s) (default OMP_NUM_THREADS); part of "
                                          "what a run computes: torch's CPU sums round differently at another "
                                          "count, so a resume keeps it", min=1, metavar="N")
    mode: str = option("graph", "MindSpore execution mode", choices=MODES, used_by=(MINDSPORE, PARITY))
    # torch on CUDA only; the defaults compute what a plain fp32 eager loop computes
    precision: str = option("fp32", "arithmetic on CUDA: fp32 (TF32 off), tf32, or bf16 autocast",
                            choices=PRECISIONS, used_by=(TORCH,))
    compile: str = option("off", "torch.compile mode on CUDA (reduce-overhead uses CUDA graphs)",
                          choices=COMPILE_MODES, used_by=(TORCH,))
    device_data: bool = option(True, "on CUDA keep the data set in GPU memory and build batches there",
                               used_by=(TORCH,))
    output_dir: Optional[str] = option(None, "run folder (default runs/{framework}-{model}-{data}[-init-{init}]-seed{seed})",
                                       used_by=TRAINERS, metavar="DIR")
    resume: bool = option(False, "continue the run in the folder after its newest finished epoch",
                          used_by=TRAINERS)
    keep_checkpoint_max: int = option(5, "per-epoch checkpoints kept (the best one is kept too)", min=1,
                                      used_by=TRAINERS)
    ckpt_prefix: Optional[str] = option(None, "MindSpore checkpoint names {prefix}-{epoch}_{steps}.ckpt "
                                              "(default train_{model}_{data})", used_by=(MINDSPORE,))
    progress: bool = option(True, "progress bar on stderr", used_by=TRAINERS)
    # data parallel (started by torchrun / msrun; batch_size stays the global batch)
    sync_bn: bool = option(False, "synchronised BatchNorm across ranks (torch on CUDA only; refused elsewhere)",
                           used_by=TRAINERS)
    world_size: int = option(1, "ranks the run was trained with: recorded, the launcher's count replaces it",
                             min=1, used_by=())


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


# --- reading -------------------------------------------------------------------------------------------

def read_mapping(path, valid_keys, example, hint=""):
    """A YAML file's top-level mapping; a missing file, bad YAML or an unknown key is a one-line error."""
    if not os.path.isfile(path):
        raise UserError(f"config file {path} not found; pass a YAML file such as {example}")
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {first_line(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {path} is not a text file ({exc.reason})") from exc
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must be a mapping of keys to values, found a {type(data).__name__}")
    unknown = sorted(map(str, set(data) - set(valid_keys)))
    if unknown:
        raise UserError(f"config file {path}: unknown key(s) {', '.join(unknown)}; "
                        f"valid keys: {', '.join(valid_keys)}{hint}")
    return data


def load_yaml(path):
    return read_mapping(path, FIELDS, "configs/digits.yaml")


def parse_set(pair):
    """``KEY=VALUE`` (VALUE in YAML syntax) from ``--set``."""
    key, sep, raw = pair.partition("=")
    if not sep or key not in FIELDS:
        raise UserError(f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(FIELDS)}")
    try:
        return key, yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise UserError(f"--set {pair!r}: {raw!r} is not a YAML value ({first_line(exc)})") from exc


# --- command line --------------------------------------------------------------------------------------

def add_arguments(parser, program=TORCH):
    """The flags ``program`` takes (one of TORCH, MINDSPORE, PARITY); each overrides the config key of its name."""
    parser.add_argument("--config", metavar="FILE", help="YAML file of config keys (e.g. configs/digits.yaml); "
                                                         "flags override it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key, VALUE in YAML syntax (repeatable)")
    for name, f in FIELDS.items():
        meta = f.metadata
        if program not in meta["used_by"]:
            continue
        flag = "--" + name.replace("_", "-")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        help_line = _help_line(meta, default, program)
        if f.type is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_line)
        elif name in ("milestones", "betas"):
            parser.add_argument(flag, dest=name, type=int if name == "milestones" else float,
                                nargs="+" if name == "milestones" else 2, default=None, metavar=meta["metavar"],
                                help=help_line)
        else:
            kind = {int: int, float: float, Optional[int]: int, Optional[float]: float}.get(f.type, str)
            parser.add_argument(flag, dest=name, type=kind, default=None, choices=meta["choices"],
                                metavar=meta["metavar"] or (None if meta["choices"] else name.upper()),
                                help=help_line)
    return parser


def _help_line(meta, default, program):
    text = meta["help"][program] if isinstance(meta["help"], dict) else meta["help"]
    shown = "the framework's own choice" if default is None and meta["metavar"] == "N" else (
        "none" if default is None or default == [] else default)
    return f"{text} (default: {shown})"


def resolve(args):
    """File values, then ``--set`` pairs, then explicit flags; every value checked before it is used."""
    values, origin = {}, {}
    if args.config:
        values = load_yaml(args.config)
        origin = {k: f"config file {args.config}" for k in values}
    for pair in args.set:
        key, value = parse_set(pair)
        values[key], origin[key] = value, f"--set {pair!r}"
    for name in FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            values[name], origin[name] = value, "--" + name.replace("_", "-")
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if values.get("threads") is None and omp.isdigit() and int(omp) > 0:
        # the launcher's share per process (torchrun, msrun, reproduce, a user's export) is the run's count
        values["threads"], origin["threads"] = int(omp), "OMP_NUM_THREADS"
    return from_mapping(values, origin)


def from_mapping(values, origin=None, check_files=True):
    """A checked :class:`TrainConfig` from ``{key: value}``; ``origin`` names where each value came from."""
    origin = origin or {}
    typed = {}
    for key, value in values.items():
        if key not in FIELDS:
            raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(FIELDS)}")
        typed[key] = _typed(key, value, origin.get(key))
    return validate(TrainConfig(**typed), check_files, origin)


def _typed(key, value, where):
    annotation = FIELDS[key].type
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: _is_int,
        float: lambda v: _is_int(v) or isinstance(v, float),
        str: lambda v: isinstance(v, str),
        Optional[str]: lambda v: v is None or isinstance(v, str),
        Optional[int]: lambda v: v is None or _is_int(v),
        Optional[float]: lambda v: v is None or _is_number(v),
        List[int]: lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
        List[float]: lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v),
    }[annotation]
    prefix = f"{where}: " if where else ""
    if not ok(value):
        raise UserError(f"{prefix}{key} must be {_TYPE_NAMES[annotation]}, got {value!r}")
    if isinstance(value, str) and "\0" in value:  # the OS refuses such a path; say so before any work
        raise UserError(f"{prefix}{key} holds a NUL character ({value!r}); remove it")
    if annotation is List[float]:
        return [float(x) for x in value]
    return float(value) if annotation is float or (annotation is Optional[float] and value is not None) else value


def _is_number(value):
    return _is_int(value) or isinstance(value, float)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               Optional[str]: "a string or null", Optional[int]: "an integer or null",
               List[int]: "a list of integers such as [100, 150]", Optional[float]: "a number or null",
               List[float]: "a list of numbers such as [0.9, 0.999]"}


def validate(cfg, check_files=True, origin=None):
    """Every key's range and choices, then the rules that tie keys together; raises :class:`UserError`.

    ``check_files=False`` skips what depends on files (``init_from`` exists), for a saved config.
    ``origin`` (key -> "config file F", "--set ...", "--flag") names in each message where the value came from.
    """
    origin = origin or {}
    for name, f in FIELDS.items():
        value, meta = getattr(cfg, name), f.metadata
        where = f"{origin[name]}: " if name in origin else ""
        if value is None:
            continue
        if meta["choices"] and value not in meta["choices"]:
            raise UserError(f"{where}{name} {value!r} unknown: choose one of {', '.join(meta['choices'])}")
        if isinstance(value, float) and not math.isfinite(value):  # inf passes every bound; nan fails them
            raise UserError(f"{where}{name} must be a finite number, got {value}")
        for bound, ok, words in (("min", lambda v, b: v >= b, "at least"), ("above", lambda v, b: v > b, "above"),
                                 ("max", lambda v, b: v <= b, "at most"), ("below", lambda v, b: v < b, "below")):
            if meta[bound] is not None and not ok(value, meta[bound]):
                raise UserError(f"{where}{name} must be {words} {meta[bound]}, got {value}")

    def need(ok, message, *keys):
        """``keys``: the keys the rule ties together; the message names where the first set one came from."""
        if not ok:
            named = next((origin[k] for k in keys if k in origin), None)
            raise UserError(f"{named}: {message}" if named else message)

    need(cfg.warmup_epochs < cfg.epochs, f"warmup_epochs must be below epochs ({cfg.epochs}), got {cfg.warmup_epochs}",
         "warmup_epochs", "epochs")
    need(cfg.schedule != "multistep" or cfg.milestones, "schedule multistep needs milestones, e.g. --milestones 100 150",
         "schedule", "milestones")
    need(all(m >= 1 for m in cfg.milestones) and cfg.milestones == sorted(set(cfg.milestones)),
         f"milestones must be increasing epochs from 1, got {cfg.milestones}", "milestones")
    need(cfg.data in DATA_SOURCES or ":" in cfg.data,
         f"data {cfg.data!r} unknown: choose one of {', '.join(DATA_SOURCES)}, or module:callable (parity-train)",
         "data")
    classes = DATA_CLASSES.get(cfg.data, 1)
    need(cfg.num_classes >= classes, f"num_classes must be at least {classes} for data {cfg.data} (its labels run "
                                     f"0-{classes - 1}), got {cfg.num_classes}", "num_classes", "data")
    need(not cfg.nesterov or cfg.momentum > 0, "nesterov needs a momentum above 0", "nesterov", "momentum")
    need(len(cfg.betas) == 2 and all(0 <= b < 1 for b in cfg.betas), f"betas must be two numbers in [0, 1), "
                                                                     f"got {cfg.betas}", "betas")
    need(not cfg.nesterov or cfg.optimizer == "sgd", f"nesterov is an sgd option; optimizer is {cfg.optimizer}",
         "nesterov", "optimizer")
    need(cfg.schedule != "onecycle" or not cfg.warmup_epochs,
         "schedule onecycle warms up by itself (its first 30% of steps); drop warmup_epochs", "schedule",
         "warmup_epochs")
    need(cfg.ckpt_prefix is None or (bool(cfg.ckpt_prefix) and os.sep not in cfg.ckpt_prefix),
         f"ckpt_prefix must be a file name prefix without {os.sep}, got {cfg.ckpt_prefix!r}", "ckpt_prefix")
    need(not check_files or cfg.init_from is None or os.path.isfile(cfg.init_from),
         f"{cfg.init_from}: no such file", "init_from")
    need(cfg.data != "cifar10" or cfg.download or cfg.data_dir,
         "data cifar10 needs --data-dir (the folder holding cifar-10-batches-py/ or -bin/), or --download", "data")
    return cfg


def check_model(cfg, framework):
    """The model name, before any work, as ``framework``'s trainer reads it (:func:`msport.resolve.check_name`:
    a zoo name must exist, a scheme must be that side's); a user callable is checked when it is built."""
    from msport import resolve

    resolve.check_name(cfg.model, framework)


def epochs_change_allowed(saved, wanted):
    """Why a run of ``saved.epochs`` cannot become ``wanted.epochs`` long, or None when it can."""
    if saved.schedule in EPOCH_COUNT_DEPENDENT:
        return (f"the {saved.schedule} schedule spreads over the epoch count, so {saved.epochs} -> {wanted.epochs} "
                f"would change the learning rate of epochs already trained")
    return None


def threads_matter(cfg):
    """On the CPU the thread count is part of what a run computes: torch's CPU kernels split their sums
    by thread and round differently at another count (49.86 against 41.50 after 2 epochs, same seed,
    1 against 2 threads). On a GPU or Ascend it only sets the host's share of the cores."""
    return cfg.device.split(":")[0].lower() == "cpu"


def default_threads():
    """The thread count of a CPU run nobody chose one for: OMP_NUM_THREADS, else the usable cores."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    return usable_cpus()


def run_dir(cfg, framework):
    if cfg.output_dir:
        return cfg.output_dir
    init = f"-init-{cfg.init}" if framework == "mindspore" else ""  # the torch side has no init choice
    return os.path.join("runs", f"{framework}-{name_slug(cfg.model)}-{cfg.data}{init}-seed{cfg.seed}")


def name_slug(model):
    """A model name fit for a file name: a spec (``port:DIR``, ``pkg.mod:build``) keeps letters, digits, . _ -."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


#: First line of every config.yaml msport writes: a run folder's config.yaml without it is the user's.
CONFIG_HEADER = "# msport run configuration: the resolved settings this run trains with\n"
#: Second line of a run folder's config.yaml: the framework that trains it (a request file has none).
_FRAMEWORK_LINE = "# framework: {}\n"


def save_resolved(cfg, path, framework=None):
    """``framework`` marks the folder as one framework's run, which the other's trainer never restarts."""
    marker = _FRAMEWORK_LINE.format(framework) if framework else ""
    atomic_write_text(path, CONFIG_HEADER + marker + yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))


def saved_framework(path):
    """The framework a run folder's config.yaml names, or None (a request file, or an older run folder)."""
    try:
        with open(path, errors="replace") as fh:
            fh.readline()
            match = re.fullmatch(_FRAMEWORK_LINE.format("(.+)").rstrip("\n"), fh.readline().rstrip("\n"))
    except OSError:
        return None
    return match.group(1) if match else None


def written_by_msport(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(len(CONFIG_HEADER)) == CONFIG_HEADER.encode()
    except OSError:
        return False


def load_resolved(path):
    try:
        return from_mapping(load_yaml(path), {}, check_files=False)
    except UserError as exc:
        raise UserError(f"{path} is not a run configuration msport can read ({exc}); "
                        f"choose another --output-dir") from exc

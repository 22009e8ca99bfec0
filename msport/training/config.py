"""One configuration for both trainers: YAML file -> command-line overrides -> resolved copy in the run.

Unknown keys are errors, in the file and on the command line alike, so a typo
never silently trains with a default.
"""

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import List, Optional

import yaml

from msport.errors import UserError
from msport.files import atomic_write_text

SCHEDULES = ("constant", "step", "multistep", "cosine")
PRECISIONS = ("fp32", "tf32", "bf16")
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
DATA_SOURCES = ("cifar10", "digits")
INITS = ("torch", "legacy", "mindspore")


@dataclass
class TrainConfig:
    # model
    model: str = "resnet18"
    num_classes: int = 10
    init: str = "torch"               # MindSpore only; the torch side is the reference
    init_from: Optional[str] = None   # .pth or .ckpt to start from (converted as needed)
    # data
    data: str = "digits"
    data_dir: Optional[str] = None
    download: bool = False
    deterministic: bool = False       # the seed's set-up: no shuffle, no crop/flip
    num_workers: int = 0               # batches cost ~2 ms of numpy: workers only compete for 2 cores
    # optimisation (SGD with momentum, weight decay on every parameter as torch does)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"
    milestones: List[int] = field(default_factory=list)  # multistep; step uses step_size
    step_size: int = 30
    gamma: float = 0.1
    warmup_epochs: int = 0
    # run
    seed: int = 0
    device: str = "cpu"               # cpu / cuda (torch); cpu / gpu / ascend (MindSpore)
    mode: str = "graph"               # MindSpore execution mode: graph / pynative
    # torch on CUDA only; the defaults compute what a plain fp32 eager loop computes
    precision: str = "fp32"           # fp32 (TF32 off) / tf32 / bf16 (autocast)
    compile: str = "off"              # off / default / reduce-overhead (CUDA graphs) / max-autotune
    device_data: bool = True          # keep the data set on the GPU and build batches there
    output_dir: Optional[str] = None
    resume: bool = False
    keep_checkpoint_max: int = 5
    ckpt_prefix: Optional[str] = None  # MindSpore checkpoint prefix; None: train_{model}_{data}
    progress: bool = True


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def read_mapping(path, valid_keys, example, hint=""):
    """A YAML file's top-level mapping; a missing file, bad YAML or an unknown key is a one-line error."""
    if not os.path.isfile(path):
        raise UserError(f"config file {path} not found; pass a YAML file such as {example}")
    with open(path) as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must be a mapping of keys to values")
    unknown = sorted(set(data) - set(valid_keys))
    if unknown:
        raise UserError(f"config file {path}: unknown key(s) {', '.join(unknown)}; "
                        f"valid keys: {', '.join(valid_keys)}{hint}")
    return data


def load_yaml(path):
    return read_mapping(path, FIELDS, "configs/digits.yaml")


def add_arguments(parser):
    """The flags both trainers accept; every flag overrides the config key of the same name."""
    parser.add_argument("--config", help="YAML file of TrainConfig keys")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config key (YAML value syntax), repeatable")
    for name, f in FIELDS.items():
        flag = "--" + name.replace("_", "-")
        if f.type in (bool, "bool"):
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        elif name == "milestones":
            parser.add_argument(flag, dest=name, type=int, nargs="+", default=None)
        else:
            parser.add_argument(flag, dest=name, type=f.type if f.type in (int, float) else str, default=None)
    return parser


def resolve(args):
    """File values, then ``--set`` pairs, then explicit flags; validated."""
    values = load_yaml(args.config) if args.config else {}
    for pair in args.set:
        key, sep, raw = pair.partition("=")
        if not sep or key not in FIELDS:
            raise UserError(f"--set {pair!r}: expected KEY=VALUE with KEY one of {', '.join(FIELDS)}")
        values[key] = yaml.safe_load(raw)
    for name in FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return validate(TrainConfig(**values))


def validate(cfg):
    def need(ok, message):
        if not ok:
            raise UserError(message)

    need(cfg.schedule in SCHEDULES, f"schedule {cfg.schedule!r} unknown: choose one of {', '.join(SCHEDULES)}")
    need(cfg.data in DATA_SOURCES, f"data {cfg.data!r} unknown: choose one of {', '.join(DATA_SOURCES)}")
    need(cfg.init in INITS, f"init {cfg.init!r} unknown: choose one of {', '.join(INITS)}")
    need(cfg.mode in ("graph", "pynative"), f"mode {cfg.mode!r} unknown: choose graph or pynative")
    need(cfg.precision in PRECISIONS, f"precision {cfg.precision!r} unknown: choose one of {', '.join(PRECISIONS)}")
    need(cfg.compile in COMPILE_MODES, f"compile {cfg.compile!r} unknown: choose one of {', '.join(COMPILE_MODES)}")
    need(cfg.epochs >= 1, f"epochs must be at least 1, got {cfg.epochs}")
    need(cfg.batch_size >= 1, f"batch_size must be at least 1, got {cfg.batch_size}")
    need(cfg.lr > 0, f"lr must be positive, got {cfg.lr}")
    need(0 <= cfg.warmup_epochs < cfg.epochs, f"warmup_epochs must be in [0, epochs), got {cfg.warmup_epochs}")
    need(cfg.keep_checkpoint_max >= 1, "keep_checkpoint_max must be at least 1")
    need(cfg.schedule != "multistep" or cfg.milestones, "schedule multistep needs milestones, e.g. --milestones 100 150")
    need(cfg.init_from is None or os.path.isfile(cfg.init_from), f"--init-from {cfg.init_from}: no such file")
    return cfg


def run_dir(cfg, framework):
    if cfg.output_dir:
        return cfg.output_dir
    init = f"-init-{cfg.init}" if framework == "mindspore" else ""  # the torch side has no init choice
    return os.path.join("runs", f"{framework}-{cfg.model}-{cfg.data}{init}-seed{cfg.seed}")


def save_resolved(cfg, path):
    atomic_write_text(path, yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))


def load_resolved(path):
    return TrainConfig(**load_yaml(path))

"""A run folder: resolved config, metrics.csv, best.json, per-epoch checkpoints, resume.

Layout (same for both frameworks)::

    RUN/config.yaml        the resolved configuration
    RUN/metrics.csv        one row per finished epoch
    RUN/best.json          the epoch with the best validation accuracy and its checkpoint
    RUN/environment.json   versions, CPU and thread counts of each process that trained it
    RUN/checkpoint/        per-epoch weights, named as the seed's scripts name them
    RUN/resume.*           model + optimizer + epoch of the newest finished epoch

Every file is written to a temporary name and renamed, so a killed process
leaves the previous complete file, never a half-written one.
"""

import csv
import json
import os
import time

from msport import environment
from msport.errors import UserError
from msport.files import atomic_write, atomic_write_text
from msport.training.config import TrainConfig, load_resolved, save_resolved

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_second")
# Keys that must not change when a run is resumed: they change what is computed.
RESUME_INVARIANT = ("model", "num_classes", "init", "data", "deterministic", "batch_size", "lr", "momentum",
                    "weight_decay", "nesterov", "schedule", "milestones", "step_size", "gamma",
                    "warmup_epochs", "seed", "epochs")


class Run:
    def __init__(self, path, cfg: TrainConfig, resume_file):
        self.path = path
        self.cfg = cfg
        self.checkpoint_dir = os.path.join(path, "checkpoint")
        self.resume_file = os.path.join(path, resume_file)
        self.metrics_file = os.path.join(path, "metrics.csv")
        self.best_file = os.path.join(path, "best.json")

    @classmethod
    def open(cls, path, cfg, resume_file):
        """Create the folder, or reopen it for ``--resume``; refuses to overwrite a finished run."""
        run = cls(path, cfg, resume_file)
        config_file = os.path.join(path, "config.yaml")
        if cfg.resume:
            if not os.path.isfile(run.resume_file):
                raise UserError(f"--resume: {run.resume_file} not found (no finished epoch to resume from); "
                                f"drop --resume to start a new run")
            saved = load_resolved(config_file)
            changed = [k for k in RESUME_INVARIANT if getattr(saved, k) != getattr(cfg, k)]
            if changed:
                raise UserError(f"--resume: {', '.join(f'{k} {getattr(saved, k)!r} -> {getattr(cfg, k)!r}' for k in changed)}"
                                f" differs from {config_file}; resume with the same settings")
        elif os.path.exists(run.metrics_file) or os.path.exists(run.resume_file):
            raise UserError(f"{path} already holds a run; pass --resume to continue it or --output-dir for a new one")
        os.makedirs(run.checkpoint_dir, exist_ok=True)
        save_resolved(cfg, config_file)
        run.record_environment()
        return run

    def record_environment(self):
        """Append this process's environment to environment.json (a resumed run may change machine)."""
        path = os.path.join(self.path, environment.ENVIRONMENT_FILE)
        records = []
        if self.cfg.resume and os.path.isfile(path):
            with open(path) as fh:
                records = json.load(fh)
        records.append(dict(environment.describe(), resumed=bool(self.cfg.resume)))
        atomic_write_text(path, json.dumps(records, indent=2) + "\n")

    # -- metrics ---------------------------------------------------------------------------
    def completed_epochs(self):
        if not os.path.exists(self.metrics_file):
            return []
        with open(self.metrics_file, newline="") as fh:
            return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)]

    def truncate_metrics(self, last_epoch):
        """Drop rows after the epoch resumed from (a killed run may have logged one without its checkpoint)."""
        rows = [r for r in self.completed_epochs() if r["epoch"] <= last_epoch]
        self._write_metrics(rows)

    def log_epoch(self, row):
        rows = self.completed_epochs() + [row]
        self._write_metrics(rows)

    def _write_metrics(self, rows):
        def write(tmp):
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=METRIC_COLUMNS)
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k])
                                     for k in METRIC_COLUMNS})

        atomic_write(self.metrics_file, write)

    # -- checkpoints -----------------------------------------------------------------------
    def record_checkpoint(self, epoch, val_acc, filename):
        """Update best.json and keep only the newest ``keep_checkpoint_max`` per-epoch files (best kept too)."""
        best = self.best()
        if best is None or val_acc > best["val_acc"]:
            best = {"epoch": epoch, "val_acc": val_acc, "checkpoint": os.path.join("checkpoint", filename)}
            atomic_write_text(self.best_file, json.dumps(best, indent=2) + "\n")
        keep = set(sorted(self._epoch_files(), key=lambda f: os.path.getmtime(os.path.join(self.checkpoint_dir, f)))
                   [-self.cfg.keep_checkpoint_max:])
        keep.add(os.path.basename(best["checkpoint"]))
        for name in self._epoch_files():
            if name not in keep:
                os.remove(os.path.join(self.checkpoint_dir, name))

    def best(self):
        if not os.path.exists(self.best_file):
            return None
        with open(self.best_file) as fh:
            return json.load(fh)

    def _epoch_files(self):
        return [f for f in os.listdir(self.checkpoint_dir) if not f.startswith(".")]


class EpochTimer:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self):
        return time.perf_counter() - self.start

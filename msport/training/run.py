"""A run folder: resolved config, metrics.csv, best.json, per-epoch checkpoints, resume files; its states.

Layout (same for both frameworks)::

    RUN/config.yaml        the resolved configuration (its first line marks it as msport's)
    RUN/metrics.csv        one row per finished epoch
    RUN/best.json          the epoch with the best validation accuracy and its checkpoint
    RUN/environment.json   versions, CPU and thread counts of each process that trained it
    RUN/checkpoint/        per-epoch weights, named as the case study's scripts name them
    RUN/initial.pth|ckpt   the weights before the first step (another run may start from them: reproduce's
                           paired arm starts MindSpore from the torch run's own draw)
    RUN/resume-E.pth|ckpt  model + optimizer + RNG after epoch E: the commit point of epoch E
    RUN/.lock              locked (POSIX record lock) by the trainer that owns the folder

States, read by :meth:`Run.state` and acted on by :meth:`Run.open` (the one place they are defined):

    EMPTY      no config.yaml: a new run starts (files of yours that msport does not write are left alone)
    STARTED    config.yaml, no resume file: killed before epoch 1 was committed; a rerun restarts it
    RESUMABLE  resume-E with E < epochs: ``--resume`` continues after epoch E; a plain rerun refuses
    FINISHED   resume-E with E == epochs: a plain rerun refuses; ``--resume`` has nothing to do, or with
               more ``--epochs`` trains on when the schedule does not depend on the epoch count

Each epoch writes, every file to a temporary name then renamed: metrics.csv, the epoch's checkpoint,
best.json and last resume-E, after which resume-(E-1) is removed. So a kill at any moment leaves
STARTED, or RESUMABLE/FINISHED at the newest committed epoch; what an uncommitted epoch wrote ahead
(a metrics row, best.json, a checkpoint) is rolled back on ``--resume``, and the temporary files of
dead processes are swept when the folder is opened. The lock is an OS file lock: it dies with its
process, so a killed trainer never leaves a stale lock behind.
"""

import csv
import dataclasses
import errno
import fcntl
import json
import os
import re
import shutil
import time

from msport import environment
from msport.errors import UserError, first_line
from msport.files import atomic_write, atomic_write_text, sweep_stale_temps
from msport.training.config import (CONFIG_HEADER, epochs_change_allowed, load_resolved, save_resolved,
                                    saved_framework, threads_matter, written_by_msport)

EMPTY, STARTED, RESUMABLE, FINISHED = "empty", "started", "resumable", "finished"
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_second")
# Keys that must not change when a run is resumed: they change what is computed (epochs: see epochs_change_allowed).
RESUME_INVARIANT = ("model", "num_classes", "init", "data", "deterministic", "batch_size", "lr", "momentum",
                    "weight_decay", "nesterov", "schedule", "milestones", "step_size", "gamma",
                    "warmup_epochs", "seed", "optimizer", "betas", "eps", "label_smoothing", "clip_grad_norm",
                    "ms_recipe", "threads")
CONFIG_FILE, LOCK_FILE = "config.yaml", ".lock"
INITIAL_STEM = "initial"  # RUN/initial.pth or .ckpt: the weights a run started from
#: The resume files' kind per framework: resume-1.pth, resume-2.pth... for torch. Its extension is also
#: that of the framework's per-epoch checkpoints, which tells whose an older run folder is.
RESUME_FILES = {"torch": "resume.pth", "mindspore": "resume.ckpt"}
_FRAMEWORK_OF = {resume: framework for framework, resume in RESUME_FILES.items()}
# {epoch}_{acc}_{model}.pth, {prefix}-{epoch}_{steps}.ckpt (a model or prefix may hold - and digits)
_CHECKPOINT_EPOCH = re.compile(r"^(\d+)_.*\.pth$|^.*-(\d+)_\d+\.ckpt$")
_held_locks = {}  # folder -> its open lock file, held as long as the process lives


class Run:
    def __init__(self, path, cfg, resume_file):
        """``resume_file`` names the resume files' kind: ``resume.pth`` gives ``resume-1.pth``, ``resume-2.pth``..."""
        self.path = path
        self.cfg = cfg
        self.checkpoint_dir = os.path.join(path, "checkpoint")
        self.config_file = os.path.join(path, CONFIG_FILE)
        self.metrics_file = os.path.join(path, "metrics.csv")
        self.best_file = os.path.join(path, "best.json")
        self.environment_file = os.path.join(path, environment.ENVIRONMENT_FILE)
        self.framework = _FRAMEWORK_OF.get(resume_file)
        self._resume_stem, self._resume_ext = os.path.splitext(resume_file)
        self._resume_name = _resume_pattern(resume_file)
        self.initial_path = os.path.join(path, f"{INITIAL_STEM}{self._resume_ext}")
        self.resume_epoch = 0  # the committed epoch a resumed run continues after

    # -- state -----------------------------------------------------------------------------
    def resume_path(self, epoch):
        return os.path.join(self.path, f"{self._resume_stem}-{epoch}{self._resume_ext}")

    def committed_epochs(self):
        """Epochs with a resume file, ascending (normally one; two right after a commit was cut short)."""
        if not os.path.isdir(self.path):
            return []
        return sorted(int(m.group(1)) for m in map(self._resume_name.match, os.listdir(self.path)) if m)

    def owner(self):
        """The framework whose run the folder holds: config.yaml's mark, or (a folder written before the
        mark) the kind of its resume files and checkpoints; None for a folder without either."""
        named = saved_framework(self.config_file)
        if named or not os.path.isdir(self.path):
            return named
        names = os.listdir(self.path) + (self._epoch_files() if os.path.isdir(self.checkpoint_dir) else [])
        for framework, resume in RESUME_FILES.items():
            ext = os.path.splitext(resume)[1]
            if any(_resume_pattern(resume).match(n) or (n.endswith(ext) and _CHECKPOINT_EPOCH.match(n))
                   for n in names):
                return framework
        return None

    def state(self):
        """``(state, committed epoch)``; raises when the folder holds files msport did not write, cannot take
        the files a run writes, or holds the other framework's run."""
        self._check_paths()
        owner = self.owner()
        if self.framework and owner and owner != self.framework:
            raise UserError(f"{self.path} holds a {owner} run, and the {self.framework} trainer never restarts or "
                            f"continues another framework's run; choose another --output-dir")
        committed = self.committed_epochs()
        if not os.path.exists(self.config_file):
            foreign = [os.path.basename(p) for p in (self.metrics_file, self.best_file, self.environment_file,
                                                      self.initial_path) if os.path.exists(p)]
            foreign += sorted(n for n in os.listdir(self.path) if any(_resume_pattern(r).match(n)
                                                                       for r in RESUME_FILES.values())) \
                if os.path.isdir(self.path) else []
            if os.path.isdir(self.checkpoint_dir) and self._epoch_files():
                foreign.append("checkpoint/")
            if foreign:
                raise UserError(f"{self.path} holds {', '.join(foreign)} but no config.yaml of msport's: not a run "
                                f"folder msport can continue; choose another --output-dir")
            return EMPTY, 0
        if not written_by_msport(self.config_file):
            raise UserError(f"{self.config_file} was not written by msport (its first line is not "
                            f"{CONFIG_HEADER.strip()!r}) and msport never overwrites your files; "
                            f"choose another --output-dir")
        if os.path.exists(self.environment_file) and environment.read_records(self.environment_file) is None:
            raise UserError(f"{self.environment_file} is not msport's record of the machines this run trained on, "
                            f"and msport never overwrites your files; move it, or choose another --output-dir")
        if not committed:
            return STARTED, 0
        saved = load_resolved(self.config_file)
        return (FINISHED if committed[-1] >= saved.epochs else RESUMABLE), committed[-1]

    def _check_paths(self):
        """The run folder and its checkpoint folder are folders (or absent): checked before anything is written."""
        for path in (self.path, self.checkpoint_dir):
            if os.path.lexists(path) and not os.path.isdir(path):
                raise UserError(f"{path} exists and is not a folder, and msport never overwrites your files; "
                                f"move it, or choose another --output-dir")

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def check(cls, path, cfg, resume_file):
        """The refusals of :meth:`open`, reading only: a trainer calls it before loading its framework."""
        cls(path, cfg, resume_file)._decide()

    @classmethod
    def open(cls, path, cfg, resume_file, restore=None, write=True):
        """Check the folder against the request, lock it, and prepare it; the first write happens here.

        Call it after everything else that can fail on bad input (config, model, data, --init-from).
        ``restore(resume_path, epoch)`` loads the state a resumed run continues from; it runs before
        anything is written, so a damaged resume file leaves the folder as it was. ``write=False``
        (data-parallel ranks other than 0) checks and restores the same, and neither locks nor writes:
        rank 0 owns the folder.
        """
        run = cls(path, cfg, resume_file)
        run._decide()                     # refusals first, before anything is created
        epoch = run.resume_epoch
        if epoch and restore is not None:
            restore(run.resume_path(epoch), epoch)
        if not write:
            return run
        created = not os.path.isdir(path)
        os.makedirs(path, exist_ok=True)
        try:
            run._lock()
            action = run._decide()        # again under the lock: another trainer may have written meanwhile
            if run.resume_epoch != epoch:
                raise UserError(f"{path} changed while it was being opened (another trainer?); run the command again")
        except UserError:
            if created:
                shutil.rmtree(path, ignore_errors=True)
            raise
        sweep_stale_temps(path, every_pid=True)
        sweep_stale_temps(run.checkpoint_dir, every_pid=True)
        if action == "start":
            run._clear()
            save_resolved(cfg, run.config_file, run.framework)
        else:  # what a resume may change is recorded: a longer run, another number of ranks
            saved = load_resolved(run.config_file)
            if (saved.epochs, saved.world_size) != (cfg.epochs, cfg.world_size) or not saved_framework(run.config_file):
                save_resolved(dataclasses.replace(saved, epochs=cfg.epochs, world_size=cfg.world_size),
                              run.config_file, run.framework)
        os.makedirs(run.checkpoint_dir, exist_ok=True)
        run.record_environment()
        return run

    def record_environment(self):
        """Append this process's environment to environment.json (a resumed run may change machine)."""
        path = self.environment_file
        records = (environment.read_records(path) or []) if self.resume_epoch else []
        records.append(dict(environment.describe(), resumed=bool(self.resume_epoch)))
        atomic_write_text(path, json.dumps(records, indent=2) + "\n")

    def _decide(self):
        """"start" (a new or restarted run) or "resume"; raises with what to do for every other case."""
        cfg, path = self.cfg, self.path
        state, epoch = self.state()
        if state == EMPTY:
            if cfg.resume:
                raise UserError(f"--resume: {path} holds no run to continue; drop --resume to start one")
            return "start"
        if state == STARTED:
            return "start"  # nothing was committed: a restart loses nothing
        saved = load_resolved(self.config_file)
        if not cfg.resume:
            if state == RESUMABLE:
                raise UserError(f"{path} holds an unfinished run ({epoch} of {saved.epochs} epochs); pass --resume "
                                f"to continue it, or another --output-dir for a new run")
            how = ("pass --resume --epochs N to train it further, or" if epochs_change_allowed(saved, saved) is None
                   else "to train longer start a new run from its weights (--init-from "
                        f"{self._last_checkpoint_hint()} --output-dir NEW), or pass")
            raise UserError(f"{path} holds a finished run of {saved.epochs} epochs; {how} another --output-dir "
                            f"for a new run")
        if cfg.threads is None:  # nothing asked for: the run keeps the thread count it was trained with
            cfg.threads = saved.threads
        unchecked = () if threads_matter(saved) and saved.threads is not None else ("threads",)
        changed = [f"{k} {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in RESUME_INVARIANT
                   if getattr(saved, k) != getattr(cfg, k) and k not in unchecked]
        if changed:
            hint = (f" (on the CPU the thread count changes the sums; pass --threads {saved.threads} or drop "
                    f"OMP_NUM_THREADS)" if any(c.startswith("threads ") for c in changed) else "")
            raise UserError(f"--resume: {', '.join(changed)} differs from {self.config_file}{hint}; resume with the "
                            f"same settings, or start a new run in another --output-dir")
        self.completed_epochs(), self.best()  # read now: a file edited by hand is refused before any write
        if cfg.epochs != saved.epochs:
            if cfg.epochs < epoch:
                raise UserError(f"--resume --epochs {cfg.epochs}: {path} has already trained {epoch} epochs")
            why_not = epochs_change_allowed(saved, cfg)
            if why_not:
                raise UserError(f"--resume: epochs {saved.epochs} -> {cfg.epochs}: {why_not}; to train longer "
                                f"start a new run from its weights (--init-from {self._last_checkpoint_hint()} "
                                f"--output-dir NEW)")
        self.resume_epoch = epoch
        return "resume"

    def _lock(self):
        key = os.path.realpath(self.path)
        if key in _held_locks:  # this process holds it already (a second open in one process)
            return
        fh = open(os.path.join(self.path, LOCK_FILE), "a+")
        try:
            # A POSIX record lock, not flock: flock is shared with children forked after it is taken
            # (DataLoader and MindSpore dataset workers), which would keep a killed trainer's folder
            # locked until they noticed; a POSIX lock belongs to this process alone and dies with it.
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise UserError(f"{self.path} is in use by a running trainer ({holder}); wait for it to end, "
                            f"or choose another --output-dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        _held_locks[key] = fh

    def _clear(self):
        """Remove what an uncommitted start left (state STARTED): metrics, best.json, checkpoints."""
        for path in (self.metrics_file, self.best_file):
            if os.path.exists(path):
                os.remove(path)
        if os.path.isdir(self.checkpoint_dir):
            for name in self._epoch_files():
                os.remove(os.path.join(self.checkpoint_dir, name))

    def _last_checkpoint_hint(self):
        files = sorted(self._epoch_files(), key=self._checkpoint_epoch) if os.path.isdir(self.checkpoint_dir) else []
        return os.path.join(self.checkpoint_dir, files[-1]) if files else os.path.join(self.checkpoint_dir, "FILE")

    # -- resuming --------------------------------------------------------------------------
    def rollback(self, epoch):
        """Undo what epochs after the committed ``epoch`` wrote ahead of their commit (a longer run was
        recorded in config.yaml by :meth:`open`)."""
        rows = self.completed_epochs()
        if any(r["epoch"] > epoch for r in rows):
            rows = [r for r in rows if r["epoch"] <= epoch]
            self._write_metrics(rows)
        for name in self._epoch_files():
            if self._checkpoint_epoch(name) > epoch:
                os.remove(os.path.join(self.checkpoint_dir, name))
        best = self.best()
        if rows and (best is None or best["epoch"] > epoch):
            top = max(rows, key=lambda r: r["val_acc"])  # the first of equals, as record_checkpoint keeps
            name = next((n for n in self._epoch_files() if self._checkpoint_epoch(n) == top["epoch"]), None)
            if name is not None:
                self._write_best(top["epoch"], top["val_acc"], name)
        for older in self.committed_epochs()[:-1]:
            os.remove(self.resume_path(older))

    def commit(self, epoch):
        """After ``resume-{epoch}`` is written: drop the older resume files."""
        for older in self.committed_epochs():
            if older < epoch:
                os.remove(self.resume_path(older))

    # -- metrics ---------------------------------------------------------------------------
    def completed_epochs(self):
        if not os.path.exists(self.metrics_file):
            return []
        try:
            with open(self.metrics_file, newline="") as fh:
                rows = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
                        for row in csv.DictReader(fh)]
        except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
            raise _damaged(self.metrics_file, exc) from exc
        if any(set(row) != set(METRIC_COLUMNS) for row in rows):
            raise _damaged(self.metrics_file, ValueError(f"its columns are not {', '.join(METRIC_COLUMNS)}"))
        return rows

    def log_epoch(self, row):
        rows = [r for r in self.completed_epochs() if r["epoch"] < row["epoch"]] + [row]
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
            best = self._write_best(epoch, val_acc, filename)
        keep = set(sorted(self._epoch_files(), key=self._checkpoint_epoch)[-self.cfg.keep_checkpoint_max:])
        keep.add(os.path.basename(best["checkpoint"]))
        for name in self._epoch_files():
            if name not in keep:
                os.remove(os.path.join(self.checkpoint_dir, name))

    def _write_best(self, epoch, val_acc, filename):
        best = {"epoch": epoch, "val_acc": val_acc, "checkpoint": os.path.join("checkpoint", filename)}
        atomic_write_text(self.best_file, json.dumps(best, indent=2) + "\n")
        return best

    def best(self):
        if not os.path.exists(self.best_file):
            return None
        try:
            with open(self.best_file) as fh:
                best = json.load(fh)
            if not (isinstance(best, dict) and {"epoch", "val_acc", "checkpoint"} <= set(best)):
                raise ValueError("it lacks epoch, val_acc or checkpoint")
        except (ValueError, UnicodeDecodeError) as exc:
            raise _damaged(self.best_file, exc) from exc
        return best

    def _epoch_files(self):
        if not os.path.isdir(self.checkpoint_dir):
            return []
        return [f for f in os.listdir(self.checkpoint_dir) if not f.startswith(".") and _CHECKPOINT_EPOCH.match(f)]

    @staticmethod
    def _checkpoint_epoch(name):
        match = _CHECKPOINT_EPOCH.match(name)
        return int(match.group(1) or match.group(2))


def _damaged(path, exc):
    return UserError(f"{path} is not as msport wrote it ({type(exc).__name__}: {first_line(exc)}); restore it, "
                     f"or start a new run in another --output-dir")


def _resume_pattern(resume_file):
    """``resume.pth`` -> the pattern of ``resume-1.pth``, ``resume-2.pth``..., the epoch as group 1."""
    stem, ext = os.path.splitext(resume_file)
    return re.compile(rf"^{re.escape(stem)}-(\d+){re.escape(ext)}$")


class EpochTimer:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self):
        return time.perf_counter() - self.start

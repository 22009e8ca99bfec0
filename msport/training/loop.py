"""The epoch loop both trainers run; the framework arrives as a ``side`` module.

A side (:mod:`~msport.training.torch_side`, :mod:`~msport.training.ms_side`)
provides ``world``, ``Stepper``, ``applied_lr``, ``all_reduce_sum``,
``average_batchnorm_statistics``, ``train_mode``, ``evaluate``,
``checkpoint_name``, ``save_checkpoint``, ``save_resume`` and ``load_resume``.
Everything else, the order of work in an epoch, the learning rate at each
step, the metrics and what is written when, is here once, so the two runs
cannot differ in it.

Data parallel (started by torchrun or msrun): every rank runs this loop on its
share of each batch; the epoch's totals are summed over the ranks, and rank 0
alone writes the run folder.
"""

import math
import os
import sys

from tqdm import tqdm

from msport.data import planned_batches
from msport.errors import UserError, first_line
from msport.training.run import EpochTimer
from msport.training.schedule import per_step_lr

PROGRESS_EVERY = 10  # steps between progress-bar refreshes of loss and accuracy


def train(side, run, model, optimizer, train_loader, val_loader, device):
    cfg = run.cfg
    steps = len(train_loader)
    lrs = per_step_lr(cfg, steps)
    stepper = side.Stepper(model, optimizer, cfg, device)
    world = side.world()
    say = _say if world.is_main else _quiet
    # every rank restored the same state (rank 0's, whatever world size wrote it) in Run.open
    start_epoch = run.resume_epoch
    if start_epoch:
        if world.is_main:
            run.rollback(start_epoch)
        say(f"resumed {run.path} after epoch {start_epoch}")
    elif cfg.resume:
        say(f"{run.path} had no finished epoch to resume from: starting at epoch 1")
    if not start_epoch and world.is_main:  # the draw this run starts from, for a run that starts from it too
        side.save_checkpoint(model, run.initial_path)
    for epoch in range(start_epoch, cfg.epochs):  # 0-based here, 1-based in files and logs
        timer = EpochTimer()
        train_loader.set_epoch(epoch)
        side.train_mode(model, True)
        loss_sum, correct, count = 0.0, 0, 0
        bar = tqdm(train_loader, total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (cfg.progress and world.is_main), file=sys.stderr, dynamic_ncols=True)
        for i, (x, y) in enumerate(bar):
            batch_loss, batch_correct = stepper(x, y, lrs[epoch * steps + i], train_loader.global_batch_size(i))
            if i == 0:  # metrics.csv's lr: the epoch's first step, as the framework applied it
                lr_applied = side.applied_lr(optimizer)
            loss_sum, correct, count = loss_sum + batch_loss, correct + batch_correct, count + len(y)
            if cfg.progress and i % PROGRESS_EVERY == 0:  # reading a GPU value waits for the GPU
                bar.set_postfix(loss=f"{float(loss_sum) / count:.4f}", acc=f"{100.0 * float(correct) / count:.2f}")
        loss_sum, correct, count = side.all_reduce_sum([loss_sum, correct, count], device)
        train_seconds = timer.seconds()
        if world.distributed and not cfg.sync_bn:
            side.average_batchnorm_statistics(model)  # one model to evaluate and save, on every rank
        val_loss, val_acc = side.evaluate(model, val_loader, device)
        row = {"epoch": epoch + 1, "train_loss": loss_sum / count, "train_acc": 100.0 * correct / count,
               "val_loss": val_loss, "val_acc": val_acc, "lr": lr_applied,
               "seconds": timer.seconds(), "images_per_second": count / train_seconds}
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss")):  # every rank: summed values
            raise UserError(f"epoch {epoch + 1}: train loss {row['train_loss']:.4g}, val loss {val_loss:.4g}: the run "
                            f"diverged (learning rate {row['lr']:.4g} too high, or the model or data); the epochs "
                            f"before are kept in {run.path}, this one is not: start a new run with a lower --lr")
        if not world.is_main:
            continue
        # Commit order (msport/training/run.py): metrics, checkpoint, best.json, then the resume file,
        # whose rename commits the epoch. A process killed before it resumes from the previous epoch.
        run.log_epoch(row)
        name = side.checkpoint_name(cfg, epoch + 1, steps, val_acc)
        side.save_checkpoint(model, os.path.join(run.checkpoint_dir, name))
        run.record_checkpoint(epoch + 1, val_acc, name)
        side.save_resume(model, optimizer, epoch + 1, run.resume_path(epoch + 1))
        run.commit(epoch + 1)
        say(f"epoch {epoch + 1}/{cfg.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.2f}  lr {row['lr']:.4g}  {row['seconds']:.1f}s  "
            f"{row['images_per_second']:.0f} img/s")
    best = run.best() if world.is_main else None
    if best:
        say(f"best val acc {best['val_acc']:.2f} at epoch {best['epoch']} ({best['checkpoint']}); run in {run.path}")
    return best


def check_forward(side, model, dataset, cfg, device):
    """Run the model once on the first validation batch, before the run folder is touched.

    The model may be the user's own code (``module:callable``, ``port:DIR``): a forward that
    raises, rejects the data's shape or returns something other than one (batch, classes) tensor
    is a one-line error here, not a traceback from the first training step after the run folder
    was written. Evaluation mode, no gradients, no random draws: nothing the run computes changes
    (in GRAPH_MODE the graph it compiles is the one evaluation uses).
    """
    world = side.world()
    x, _ = planned_batches(dataset, cfg.batch_size, train=False, augment=False, seed=cfg.seed,
                           rank=world.rank, world=world.size).batch(0, 0)
    what = f"--model {cfg.model}"
    try:
        kind, shape = side.probe_forward(model, x, device)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's forward failed: one line, not a traceback
        raise UserError(f"{what}: its forward on a batch of shape {tuple(x.shape)} ({dataset.name}) failed: "
                        f"{type(exc).__name__}: {first_line(exc)}") from exc
    classes = len(dataset.classes)
    if shape is None:
        kind = "None" if kind == "NoneType" else f"a {kind}"
        raise UserError(f"{what}: its forward returned {kind}; the trainers need the logits, one tensor of "
                        f"shape (batch, classes) = ({len(x)}, {cfg.num_classes})")
    if len(shape) != 2 or shape[0] != len(x) or shape[1] < classes:
        raise UserError(f"{what}: its forward returned logits of shape {tuple(shape)} for a batch of {len(x)}; "
                        f"the trainers need (batch, classes) with at least {classes} classes for {dataset.name}")


def _say(message):
    print(message, flush=True)


def _quiet(message):
    del message

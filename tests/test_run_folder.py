"""Run folders: their states, the lock, stale temporary files, and a real trainer killed at every write.

The state machine is tested in-process (no framework needed). The kill suite runs the real torch
trainer and kills it with SIGKILL at each write point of an epoch, the moment that write's temporary
file is complete and before its rename (``MSPORT_FAULT``, :mod:`msport.files`); the folder is then
continued the way its state says, and must end bit-identical to an uninterrupted run.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from msport.errors import UserError
from msport.files import sweep_stale_temps
from msport.training.config import CONFIG_HEADER, TrainConfig, save_resolved
from msport.training.run import EMPTY, FINISHED, RESUMABLE, STARTED, Run

REPO = Path(__file__).resolve().parents[1]
# digits, the step schedule (its per-epoch rate does not depend on the epoch count, so a run can grow)
RUN_ARGS = ["--model", "resnet10_w16", "--data", "digits", "--batch-size", "128", "--lr", "0.05", "--schedule", "step",
            "--step-size", "1", "--gamma", "0.5", "--deterministic", "--no-progress", "--threads", "1"]


def _cfg(path, **changes):
    values = dict(model="resnet10_w16", data="digits", epochs=2, schedule="step", step_size=1, output_dir=str(path))
    return TrainConfig(**{**values, **changes})


def _finished_folder(path, epochs=2, committed=(2,), **changes):
    """A run folder as the trainer leaves it, with stand-in file contents (the state needs only the names)."""
    cfg = _cfg(path, epochs=epochs, **changes)
    os.makedirs(path / "checkpoint", exist_ok=True)
    save_resolved(cfg, path / "config.yaml")
    rows = ["epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds,images_per_second"]
    rows += [f"{e},1,50,1,{40 + e},0.1,1,100" for e in range(1, max(committed) + 1)]
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    for e in range(1, max(committed) + 1):
        (path / "checkpoint" / f"{e}_{40 + e:.2f}_resnet10_w16.pth").write_bytes(b"weights")
    best = max(committed)
    (path / "best.json").write_text(f'{{"epoch": {best}, "val_acc": {40 + best}, '
                                    f'"checkpoint": "checkpoint/{best}_{40 + best:.2f}_resnet10_w16.pth"}}')
    for e in committed:
        (path / f"resume-{e}.pth").write_bytes(b"state")
    return cfg


# ---- states (in-process) -----------------------------------------------------------------------

def test_a_new_folder_gets_an_msport_config_and_a_user_file_beside_it_is_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    run = Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")
    assert (tmp_path / "config.yaml").read_text().startswith(CONFIG_HEADER)
    assert run.state() == (STARTED, 0) and (tmp_path / "notes.txt").read_text() == "mine"


def test_a_users_config_yaml_is_never_overwritten(tmp_path):
    (tmp_path / "config.yaml").write_text("lr: 0.3  # my own\n")
    with pytest.raises(UserError, match="not written by msport"):
        Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")
    assert (tmp_path / "config.yaml").read_text() == "lr: 0.3  # my own\n"
    assert not (tmp_path / ".lock").exists()


def test_metrics_without_an_msport_config_are_not_taken_over(tmp_path):
    (tmp_path / "metrics.csv").write_text("somebody's\n")
    with pytest.raises(UserError, match="holds metrics.csv but no config.yaml"):
        Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")


def test_a_start_killed_before_its_first_commit_restarts_with_or_without_resume(tmp_path):
    _finished_folder(tmp_path, committed=(1,))
    os.remove(tmp_path / "resume-1.pth")  # the commit never happened
    for resume in (False, True):
        run = Run.open(str(tmp_path), _cfg(tmp_path, resume=resume), "resume.pth")
        assert run.resume_epoch == 0
        assert not (tmp_path / "metrics.csv").exists() and os.listdir(tmp_path / "checkpoint") == []


def test_an_unfinished_run_needs_resume_and_rolls_back_what_ran_ahead_of_its_commit(tmp_path):
    _finished_folder(tmp_path, committed=(1,))
    # epoch 2 wrote its metrics row, checkpoint and best.json, and was killed before resume-2
    (tmp_path / "metrics.csv").write_text((tmp_path / "metrics.csv").read_text() + "2,1,50,1,90,0.1,1,100\n")
    (tmp_path / "checkpoint" / "2_90.00_resnet10_w16.pth").write_bytes(b"ahead")
    (tmp_path / "best.json").write_text('{"epoch": 2, "val_acc": 90, "checkpoint": "checkpoint/2_90.00_resnet10_w16.pth"}')
    with pytest.raises(UserError, match=r"unfinished run \(1 of 2 epochs\); pass --resume"):
        Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")
    run = Run.open(str(tmp_path), _cfg(tmp_path, resume=True), "resume.pth")
    assert run.state() == (RESUMABLE, 1) and run.resume_epoch == 1
    run.rollback(1)
    assert [r["epoch"] for r in run.completed_epochs()] == [1]
    assert os.listdir(tmp_path / "checkpoint") == ["1_41.00_resnet10_w16.pth"]
    assert run.best()["epoch"] == 1 and run.best()["checkpoint"] == "checkpoint/1_41.00_resnet10_w16.pth"


def test_two_resume_files_after_a_cut_commit_continue_from_the_newer(tmp_path):
    _finished_folder(tmp_path, epochs=3, committed=(1, 2))
    run = Run.open(str(tmp_path), _cfg(tmp_path, epochs=3, resume=True), "resume.pth")
    assert run.resume_epoch == 2
    run.rollback(2)
    assert run.committed_epochs() == [2]


def test_a_finished_run_says_what_to_do(tmp_path):
    _finished_folder(tmp_path)
    with pytest.raises(UserError, match="finished run of 2 epochs; pass --resume --epochs N"):
        Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")
    assert Run.open(str(tmp_path), _cfg(tmp_path, resume=True), "resume.pth").resume_epoch == 2


def test_a_step_schedule_run_can_grow_and_a_cosine_one_cannot(tmp_path):
    _finished_folder(tmp_path / "step")
    run = Run.open(str(tmp_path / "step"), _cfg(tmp_path / "step", epochs=3, resume=True), "resume.pth")
    run.rollback(run.resume_epoch)
    assert yaml.safe_load((tmp_path / "step" / "config.yaml").read_text())["epochs"] == 3
    _finished_folder(tmp_path / "cos", schedule="cosine")
    before = (tmp_path / "cos" / "config.yaml").read_bytes()
    with pytest.raises(UserError, match="cosine schedule spreads over the epoch count.*--init-from .*2_42.00"):
        Run.open(str(tmp_path / "cos"), _cfg(tmp_path / "cos", schedule="cosine", epochs=3, resume=True), "resume.pth")
    with pytest.raises(UserError, match="finished run of 2 epochs; to train longer start a new run"):
        Run.open(str(tmp_path / "cos"), _cfg(tmp_path / "cos", schedule="cosine"), "resume.pth")
    assert (tmp_path / "cos" / "config.yaml").read_bytes() == before


def test_resume_with_changed_settings_names_them(tmp_path):
    _finished_folder(tmp_path, epochs=3, committed=(1,))
    with pytest.raises(UserError, match="lr 0.1 -> 0.3 differs"):
        Run.open(str(tmp_path), _cfg(tmp_path, epochs=3, lr=0.3, resume=True), "resume.pth")
    with pytest.raises(UserError, match="holds no run to continue"):
        Run.open(str(tmp_path / "new"), _cfg(tmp_path / "new", resume=True), "resume.pth")
    assert not (tmp_path / "new").exists()


def test_stale_temporary_files_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [f".metrics.csv.tmp-{dead}", f".x.ckpt.tmp-{dead}.ckpt", f".x.ckpt.tmp-{dead}.tmp"]
    for name in stale + [f".best.json.tmp-{os.getpid()}", "notes.tmp-1"]:
        (tmp_path / name).write_text("")
    assert sorted(sweep_stale_temps(str(tmp_path))) == sorted(stale)
    assert sorted(os.listdir(tmp_path)) == sorted([f".best.json.tmp-{os.getpid()}", "notes.tmp-1"])


def _hold_lock(folder):
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.lockf(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
                               str(folder / ".lock")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_locked_folder_refuses_a_second_trainer_until_the_holder_dies(tmp_path):
    _finished_folder(tmp_path, epochs=3, committed=(1,))
    holder = _hold_lock(tmp_path)
    try:
        with pytest.raises(UserError, match="in use by a running trainer"):
            Run.open(str(tmp_path), _cfg(tmp_path, epochs=3, resume=True), "resume.pth")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert Run.open(str(tmp_path), _cfg(tmp_path, epochs=3, resume=True), "resume.pth").resume_epoch == 1


def test_the_lock_dies_with_the_trainer_even_when_its_forked_workers_live_on(tmp_path):
    # DataLoader and MindSpore dataset workers are forked after the folder is locked; flock would be
    # shared with them and keep a killed trainer's folder locked while they linger.
    script = ("import os, sys, time; from msport.training.run import Run; from msport.training.config import "
              "TrainConfig; Run.open(sys.argv[1], TrainConfig(model='resnet10_w16', output_dir=sys.argv[1]), "
              "'resume.pth'); worker = os.fork()\n"
              "if worker == 0: time.sleep(60); os._exit(0)\n"
              "print(worker, flush=True); time.sleep(60)")
    trainer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    worker = int(trainer.stdout.readline())
    try:
        with pytest.raises(UserError, match="in use by a running trainer"):
            Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
        assert _alive(worker)
        assert Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth").state() == (STARTED, 0)
    finally:
        os.kill(worker, signal.SIGKILL)


# ---- the kill suite: a real trainer killed at each write point ---------------------------------------

def _train(out, *extra, fault=None, script="train_torch.py", threads=True):
    """``threads=False``: no --threads flag and no OMP_NUM_THREADS, the count left to what the folder recorded."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if fault:
        env["MSPORT_FAULT"] = fault
    args = RUN_ARGS if threads else RUN_ARGS[:-2]
    if not threads:
        env.pop("OMP_NUM_THREADS", None)
    return subprocess.run([sys.executable, str(REPO / script), *args, "--output-dir", str(out), *extra],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)


def _weights(path):
    import torch

    return {k: v.numpy() for k, v in torch.load(path, weights_only=True).items()}


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


#: (write point, MSPORT_FAULT): each kill lands on the Nth write of that file in its process.
KILLS = (
    ("config.yaml at the start", "kill:config.yaml"),
    ("epoch 1 metrics.csv", "kill:metrics.csv"),
    ("epoch 1 checkpoint: the first save", "kill:1_*_resnet10_w16.pth"),
    ("epoch 1 best.json", "kill:best.json"),
    ("epoch 1 resume file: its commit", "kill:resume-1.pth"),
    ("epoch 2 metrics.csv", "kill:metrics.csv:2"),
    ("epoch 2 checkpoint", "kill:2_*_resnet10_w16.pth"),
    ("epoch 2 best.json", "kill:best.json"),
    ("epoch 2 resume file: its commit", "kill:resume-2.pth"),
)


@pytest.mark.slow
def test_a_trainer_killed_at_every_write_point_continues_to_the_same_bits(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    result = _train(whole, "--epochs", "3")
    assert result.returncode == 0, result.stderr
    survived = []
    for point, fault in KILLS:
        state, _ = Run(str(broken), None, "resume.pth").state()
        resume = ["--resume"] if state in (RESUMABLE, FINISHED) else []
        killed = _train(broken, "--epochs", "2", *resume, fault=fault)
        assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.stderr[-2000:]}"
        survived.append(point)
    state, epoch = Run(str(broken), None, "resume.pth").state()
    assert (state, epoch) == (RESUMABLE, 1)  # the last kill came before epoch 2's commit
    # A full disk at the next commit: one line, exit 2, the previous epoch's files kept.
    full = _train(broken, "--epochs", "2", "--resume", fault="enospc:resume-2.pth")
    assert full.returncode == 2 and "no space left on" in full.stderr and "Traceback" not in full.stderr
    assert len(full.stderr.strip().splitlines()) == 1, full.stderr
    assert (broken / "resume-1.pth").is_file() and not (broken / "resume-2.pth").exists()
    # A second trainer meanwhile is refused; the holder's death frees the folder.
    holder = _hold_lock(broken)
    try:
        refused = _train(broken, "--epochs", "2", "--resume")
        assert refused.returncode == 2 and "in use by a running trainer" in refused.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The other framework's trainer, and a resume at another thread count, are refused and touch nothing.
    before = {p: p.read_bytes() for p in broken.rglob("*") if p.is_file() and p.name != ".lock"}
    other = _train(broken, "--epochs", "2", "--resume", script="train_ms.py")
    assert other.returncode == 2 and "holds a torch run, and the mindspore trainer never" in other.stderr
    threads = _train(broken, "--epochs", "2", "--resume", "--threads", "2")
    assert threads.returncode == 2 and "threads 1 -> 2 differs" in threads.stderr, threads.stderr
    assert {p: p.read_bytes() for p in broken.rglob("*") if p.is_file() and p.name != ".lock"} == before
    # Resumed with no thread count asked for: the recorded one is kept (bit-identity below proves it).
    done = _train(broken, "--epochs", "2", "--resume", threads=False)
    assert done.returncode == 0, done.stderr
    # ... and the finished 2-epoch run grows to 3 (the step schedule allows it).
    longer = _train(broken, "--epochs", "3", "--resume")
    assert longer.returncode == 0, longer.stderr
    names = sorted(os.listdir(whole / "checkpoint"))
    assert sorted(os.listdir(broken / "checkpoint")) == names
    for name in names:
        assert _same_weights(whole / "checkpoint" / name, broken / "checkpoint" / name), name
    assert (broken / "metrics.csv").read_text().splitlines()[0] == (whole / "metrics.csv").read_text().splitlines()[0]
    assert [line.split(",")[:6] for line in (broken / "metrics.csv").read_text().splitlines()] == \
        [line.split(",")[:6] for line in (whole / "metrics.csv").read_text().splitlines()]
    assert (broken / "best.json").read_text() == (whole / "best.json").read_text()
    leftovers = [n for n in os.listdir(broken) + os.listdir(broken / "checkpoint") if ".tmp-" in n]
    assert leftovers == [] and Run(str(broken), None, "resume.pth").committed_epochs() == [3]
    print(f"kills tried: {len(survived)}; resumed run bit-identical to the uninterrupted one: "
          f"{len(names)} of {len(names)} checkpoints")


@pytest.mark.slow
def test_a_mindspore_trainer_killed_at_its_first_commit_restarts_and_finishes(tmp_path):
    out = tmp_path / "ms"
    command = [sys.executable, str(REPO / "train_ms.py"), *RUN_ARGS, "--epochs", "1", "--output-dir", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    killed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO,
                            env={**env, "MSPORT_FAULT": "kill:train_resnet10_w16_digits-1_*.ckpt"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert any(".tmp-" in n for n in os.listdir(out / "checkpoint"))  # what the kill left
    assert Run(str(out), None, "resume.ckpt").state() == (STARTED, 0)
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert os.listdir(out / "checkpoint") == ["train_resnet10_w16_digits-1_12.ckpt"]
    assert sorted(os.listdir(out)) == [".lock", "best.json", "checkpoint", "config.yaml", "environment.json",
                                       "initial.ckpt", "metrics.csv", "resume-1.ckpt"]


# ---- msport reproduce: a trainer whose parent dies stops ----------------------------------------------

@pytest.mark.slow
def test_a_trainer_stops_when_msport_reproduce_is_killed(tmp_path):
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"seeds": [0], "arms": ["torch"], "output_dir": str(tmp_path / "out"),
                                      "train": {"model": "resnet10_w16", "data": "digits", "epochs": 50,
                                                "batch_size": 128}}))
    parent = subprocess.Popen([sys.executable, "-m", "msport", "reproduce", "--config", str(config)], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    lock = tmp_path / "out" / "runs" / "torch-seed0" / ".lock"
    deadline = time.time() + 120
    while not (lock.exists() and lock.read_text().startswith("pid")) and time.time() < deadline:
        time.sleep(0.2)
    trainer = int(lock.read_text().split()[1])
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 30
    while _alive(trainer) and time.time() < deadline:
        time.sleep(0.2)
    assert not _alive(trainer), "the trainer outlived msport reproduce"
    assert Run(str(lock.parent), None, "resume.pth").state()[0] in (EMPTY, STARTED, RESUMABLE)


@pytest.mark.slow
def test_an_interrupted_reproduce_stops_every_run_in_flight(tmp_path):
    """A SIGINT sent to msport reproduce alone (not to its process group, as a terminal's Ctrl-C is) reaches
    only its main thread; the runs its pool threads supervise must stop too, and it exits 130."""
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"seeds": [0], "arms": ["torch", "ms_parity"], "output_dir": str(tmp_path / "out"),
                                      "train": {"model": "resnet10_w16", "data": "digits", "epochs": 50,
                                                "batch_size": 128}}))
    parent = subprocess.Popen([sys.executable, "-m", "msport", "reproduce", "--config", str(config), "--parallel-runs",
                               "2"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    locks = [tmp_path / "out" / "runs" / name / ".lock" for name in ("torch-seed0", "ms_parity-seed0")]
    deadline = time.time() + 180
    while not all(lock.exists() and lock.read_text().startswith("pid") for lock in locks) and time.time() < deadline:
        time.sleep(0.2)
    trainers = [int(lock.read_text().split()[1]) for lock in locks]
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 130 and "interrupted" in err, err[-2000:]
    assert not any(_alive(pid) for pid in trainers), "a trainer outlived an interrupted msport reproduce"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie (dead, not yet reaped by init) counts as stopped
        return fh.read().split()[2] != "Z"


# ---- msport reproduce: the report covers every run in the folder ----------------------------------------

def test_a_rerun_of_one_arm_reports_every_finished_run_in_the_folder(tmp_path):
    from msport.reproduce.config import load_config, plan_runs, read_outcome, with_other_finished_runs

    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"seeds": [0, 1], "output_dir": str(tmp_path / "out"),
                                      "train": {"model": "resnet10_w16", "epochs": 1}}))
    everything = load_config(str(config))
    for run in plan_runs(everything):  # three arms x two seeds, finished
        folder = run.folder()
        os.makedirs(folder.checkpoint_dir)
        save_resolved(folder.cfg, folder.config_file)
        folder.log_epoch({"epoch": 1, "train_loss": 1.0, "train_acc": 50.0, "val_loss": 1.0, "val_acc": 50.0 + run.seed,
                          "lr": 0.1, "seconds": 1.0, "images_per_second": 100.0})
        folder.record_checkpoint(1, 50.0 + run.seed, "1_50.00_x.pth")
        Path(folder.resume_path(1)).write_bytes(b"state")
    other = plan_runs(load_config(str(config), arms=["ms_legacy"], seeds=[1]))[0]
    save_resolved(dataclasses.replace(other.config, lr=0.3), other.folder().config_file)  # trained otherwise
    only_torch = load_config(str(config), arms=["torch"], seeds=[0])
    cfg, outcomes = with_other_finished_runs(only_torch, [read_outcome(plan_runs(only_torch)[0])])
    assert cfg.arms == ["torch", "ms_legacy", "ms_parity"] and cfg.seeds == [0, 1]
    assert [(o.arm, o.seed) for o in outcomes] == [("torch", 0), ("ms_legacy", 0), ("ms_parity", 0), ("torch", 1),
                                                   ("ms_parity", 1)]


# ---- atomic writes ---------------------------------------------------------------------------------------

def test_a_failed_write_leaves_no_temporary_file_not_even_mindspores_inner_one(tmp_path):
    from msport.files import WriteError, atomic_write, temp_names

    (tmp_path / "m.ckpt").write_bytes(b"previous")
    tmp, inner = temp_names(tmp_path / "m.ckpt")

    def write(path):  # as MindSpore's save_checkpoint does: its own "<stem>.tmp" first, then a failure
        assert path == tmp
        Path(inner).write_bytes(b"half")
        raise RuntimeError("Failed to save the checkpoint file")

    with pytest.raises(WriteError, match="could not write .*m.ckpt: Failed to save"):
        atomic_write(tmp_path / "m.ckpt", write)
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"] and (tmp_path / "m.ckpt").read_bytes() == b"previous"


# ---- what a folder holds is checked before anything is written (issue 21: 1, 2, 10) -----------------

def test_a_finished_torch_run_is_never_restarted_by_the_mindspore_trainer_nor_the_reverse(tmp_path):
    _finished_folder(tmp_path / "torch")  # no framework mark in its config.yaml: told by its resume files
    run = Run.open(str(tmp_path / "marked"), _cfg(tmp_path / "marked"), "resume.ckpt")  # marked at the start
    assert run.owner() == "mindspore"
    before = {p: p.read_bytes() for p in (tmp_path / "torch").rglob("*") if p.is_file()}
    for folder, other in (("torch", "resume.ckpt"), ("marked", "resume.pth")):
        for resume in (False, True):
            with pytest.raises(UserError, match=r"holds a (torch|mindspore) run, and the .* trainer never restarts"):
                Run.open(str(tmp_path / folder), _cfg(tmp_path / folder, resume=resume), other)
    assert {p: p.read_bytes() for p in (tmp_path / "torch").rglob("*") if p.is_file()} == before


def test_a_checkpoint_file_where_the_folder_goes_is_refused_before_anything_is_written(tmp_path):
    tmp_path.joinpath("checkpoint").write_bytes(b"mine")
    with pytest.raises(UserError, match="checkpoint exists and is not a folder"):
        Run.check(str(tmp_path), _cfg(tmp_path), "resume.pth")
    with pytest.raises(UserError, match="checkpoint exists and is not a folder"):
        Run.open(str(tmp_path), _cfg(tmp_path), "resume.pth")
    assert sorted(os.listdir(tmp_path)) == ["checkpoint"]  # no config.yaml, no .lock
    with pytest.raises(UserError, match="is not a folder"):
        Run.open(str(tmp_path / "checkpoint"), _cfg(tmp_path / "checkpoint"), "resume.pth")


def test_a_users_environment_json_is_never_overwritten(tmp_path):
    mine = '{"my": "notes"}\n'
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "environment.json").write_text(mine)
    with pytest.raises(UserError, match="holds environment.json but no config.yaml"):
        Run.open(str(tmp_path / "new"), _cfg(tmp_path / "new"), "resume.pth")
    _finished_folder(tmp_path / "run", epochs=3, committed=(1,))
    (tmp_path / "run" / "environment.json").write_text(mine)
    with pytest.raises(UserError, match="environment.json is not msport's record"):
        Run.open(str(tmp_path / "run"), _cfg(tmp_path / "run", epochs=3, resume=True), "resume.pth")
    assert (tmp_path / "new" / "environment.json").read_text() == (tmp_path / "run" / "environment.json").read_text() \
        == mine
    os.remove(tmp_path / "run" / "environment.json")  # msport's own record is appended to on a resume
    Run.open(str(tmp_path / "run"), _cfg(tmp_path / "run", epochs=3, resume=True), "resume.pth")
    run = Run.open(str(tmp_path / "run"), _cfg(tmp_path / "run", epochs=3, resume=True), "resume.pth")
    assert [r["resumed"] for r in yaml.safe_load((tmp_path / "run" / "environment.json").read_text())] == [True, True]
    assert run.resume_epoch == 1


def test_a_cpu_run_resumes_only_at_its_own_thread_count_and_keeps_it_when_none_is_asked(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    _finished_folder(tmp_path, epochs=3, committed=(1,), threads=1)
    with pytest.raises(UserError, match=r"threads 1 -> 2 differs .*pass --threads 1"):
        Run.open(str(tmp_path), _cfg(tmp_path, epochs=3, resume=True, threads=2), "resume.pth")
    kept = _cfg(tmp_path, epochs=3, resume=True)
    Run.check(str(tmp_path), kept, "resume.pth")
    assert kept.threads == 1  # the trainer then runs at the recorded count
    # off the CPU the count only shares the host's cores: not part of the run
    _finished_folder(tmp_path / "gpu", epochs=3, committed=(1,), threads=1, device="cuda")
    Run.check(str(tmp_path / "gpu"), _cfg(tmp_path / "gpu", epochs=3, resume=True, threads=4, device="cuda"),
              "resume.pth")


def test_the_launchers_omp_num_threads_is_the_runs_count_and_names_its_source(monkeypatch):
    from msport.errors import OneLineParser
    from msport.training.config import TORCH, add_arguments, resolve

    parser = add_arguments(OneLineParser(prog="t"), TORCH)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert resolve(parser.parse_args([])).threads == 3
    assert resolve(parser.parse_args(["--threads", "2"])).threads == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "0")
    assert resolve(parser.parse_args([])).threads is None


@pytest.mark.parametrize("name,text", [("best.json", "{broken"), ("best.json", "[1]"),
                                       ("metrics.csv", "epoch,train_loss\n1,abc\n")])
def test_a_run_file_edited_by_hand_is_refused_before_a_resume_writes(tmp_path, name, text):
    _finished_folder(tmp_path, epochs=3, committed=(1,))
    (tmp_path / name).write_text(text)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match=rf"{name} is not as msport wrote it .*restore it"):
        Run.open(str(tmp_path), _cfg(tmp_path, epochs=3, resume=True), "resume.pth",
                 restore=lambda path, epoch: pytest.fail("restored before the refusal"))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"} == before

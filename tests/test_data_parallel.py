"""Data parallel training, started by the real launchers (torchrun, msrun) at world size 2 on the CPU.

The launchers are subprocesses with bounded time; nothing here fakes a rank. Tiny data (45 random
CIFAR-format images: batches of 16, 16 and an uneven 13) and tiny ResNets keep each run short; msrun's
start-up dominates.
"""

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import DATA_PARALLEL_RTOL, max_rel
from data_helpers import write_both_formats
from msport.data import load_dataset, planned_batches
from msport.errors import UserError
from msport.training.parallel import World, check_batch_size, free_port, launch_command, launcher_env

REPO = Path(__file__).resolve().parents[1]
LAUNCH_TIMEOUT = 420  # seconds for one launcher run; msrun alone takes ~15 s to start two workers here
SCRIPTS = {"torch": "train_torch.py", "mindspore": "train_ms.py"}


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    return str(write_both_formats(tmp_path_factory.mktemp("cifar"), n_train=45, n_test=15).binary_dir)


def _argv(out, data_dir, *extra):
    return ["--data", "cifar10", "--data-dir", data_dir, "--output-dir", str(out), "--batch-size", "16",
            "--lr", "0.05", "--num-workers", "1", "--no-progress", *extra]


def _train(framework, world, out, data_dir, *extra, wait=True):
    """One run of a trainer: plain python at world 1, torchrun / msrun at world > 1 (own process group)."""
    script = str(REPO / SCRIPTS[framework])
    if world == 1:
        cmd = [sys.executable, script]
    else:
        cmd = launch_command(script, world, framework=framework, port=free_port(), log_dir=str(out) + ".logs")
    env = launcher_env()
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(cmd + _argv(out, data_dir, *extra), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    if not wait:
        return proc
    try:
        output, _ = proc.communicate(timeout=LAUNCH_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_everything(proc.pid)
        proc.communicate()
        raise
    logs = Path(str(out) + ".logs")
    if logs.is_dir():  # msrun's workers write their output there
        output += "".join(f.read_text() for f in sorted(logs.glob("worker_*.log")))
    assert proc.returncode == 0, output[-3000:]
    return output


def _kill_everything(pid):
    """SIGKILL a launcher and every process under it: torchrun starts its ranks in sessions of their own,
    so killing the launcher's process group alone would leave them training."""
    def descendants(p):
        children = []
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return children + [d for c in children for d in descendants(c)]

    for p in [pid, *descendants(pid)]:
        try:
            os.killpg(os.getpgid(p), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _final_weights(run):
    from msport.checkpoints import load_any

    def epoch(name):  # {epoch}_{val_acc}_{model}.pth or {prefix}-{epoch}_{steps}.ckpt
        return int(name.split("-")[-1].split("_")[0]) if name.endswith(".ckpt") else int(name.split("_")[0])

    final = max((f for f in os.listdir(Path(run) / "checkpoint") if not f.startswith(".")), key=epoch)
    return load_any(Path(run) / "checkpoint" / final)[1], final


def _metrics(run):
    with open(Path(run) / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _worst(a, b):
    """The largest per-tensor max_rel over the parameters both hold (torch naming), and its name."""
    return max((max_rel(a[k], b[k]), k) for k in a if k in b and np.issubdtype(np.asarray(a[k]).dtype, np.floating))


# ---- sharding and batch size (no launcher needed: pure functions) ------------------------------

def test_rank_shards_put_together_are_the_single_process_batch(cifar_dir):
    ds = load_dataset("cifar10", cifar_dir, "train")
    whole = planned_batches(ds, 16, train=True, augment=True, seed=3)
    shards = [planned_batches(ds, 16, train=True, augment=True, seed=3, rank=r, world=2) for r in range(2)]
    for epoch in (0, 4):
        for step in range(whole.steps):  # the last batch, 13 images, splits 7 + 6
            x, y = whole.batch(epoch, step)
            parts = [s.batch(epoch, step) for s in shards]
            assert np.array_equal(np.concatenate([p[0] for p in parts]), x)
            assert np.array_equal(np.concatenate([p[1] for p in parts]), y)
            assert all(s.global_batch_size(step) == len(y) for s in shards)


def test_a_global_batch_the_world_does_not_divide_is_an_error():
    assert check_batch_size(16, World(0, 2)) == 8
    with pytest.raises(UserError, match="--batch-size 10 .* 4 ranks"):
        check_batch_size(10, World(0, 4))


# ---- the launchers: world 2 against world 1 --------------------------------------------------

@pytest.fixture(scope="module")
def nobn_runs(tmp_path_factory, cifar_dir):
    """resnet10_w16_nobn, 3 steps (one epoch), the same starting weights, at world 1 and 2 in both frameworks."""
    import reference_torch

    root = tmp_path_factory.mktemp("dp")
    torch.manual_seed(0)
    start = root / "start.pth"
    torch.save(reference_torch.create_model("resnet10_w16_nobn").state_dict(), start)
    runs = {}
    for framework in ("torch", "mindspore"):
        for world in (1, 2):
            out = root / f"{framework}-w{world}"
            _train(framework, world, out, cifar_dir, "--model", "resnet10_w16_nobn", "--epochs", "1",
                   "--init-from", str(start), "--weight-decay", "0.01")
            runs[framework, world] = out
    return runs


@pytest.mark.slow
def test_world_2_trains_what_world_1_trains_and_the_frameworks_agree_as_closely_as_single_process(nobn_runs):
    """One test over the four runs (not one per check), so a parallel suite trains them once."""
    for framework in ("torch", "mindspore"):
        one, _ = _final_weights(nobn_runs[framework, 1])
        two, _ = _final_weights(nobn_runs[framework, 2])
        worst, name = _worst(one, two)
        print(f"{framework}: world 2 vs world 1 after 3 steps, worst parameter {name}: {worst:.2e} (relative)")
        assert worst < DATA_PARALLEL_RTOL, f"{framework}: {name} differs by {worst:.2e} (relative) after 3 steps"
        m1, m2 = _metrics(nobn_runs[framework, 1])[0], _metrics(nobn_runs[framework, 2])[0]
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):  # totals summed over ranks, each image once
            assert float(m2[key]) == pytest.approx(float(m1[key]), rel=1e-4, abs=1e-4), (framework, key)
        assert yaml.safe_load((nobn_runs[framework, 2] / "config.yaml").read_text())["world_size"] == 2
        assert yaml.safe_load((nobn_runs[framework, 1] / "config.yaml").read_text())["world_size"] == 1
    single, _ = _worst(_final_weights(nobn_runs["torch", 1])[0], _final_weights(nobn_runs["mindspore", 1])[0])
    parallel, name = _worst(_final_weights(nobn_runs["torch", 2])[0], _final_weights(nobn_runs["mindspore", 2])[0])
    print(f"torch vs MindSpore after 3 steps: world 1 {single:.2e}, world 2 {parallel:.2e} ({name})")
    # The single-process pair's distance is the control: float32 rounding of two implementations.
    assert parallel <= max(10 * single, DATA_PARALLEL_RTOL), (
        f"world 2: {name} torch vs MindSpore {parallel:.2e}; world 1 pair {single:.2e}")


# ---- kill a whole process group mid-run, resume at world 2 and at world 1 --------------------------

@pytest.mark.slow
def test_killed_torchrun_group_resumes_bit_identical_at_world_2_and_also_at_world_1(tmp_path, cifar_dir):
    epochs = ("--epochs", "3", "--model", "resnet10_w16")
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    _train("torch", 2, whole, cifar_dir, *epochs)

    proc = _train("torch", 2, broken, cifar_dir, *epochs, wait=False)
    deadline = time.time() + LAUNCH_TIMEOUT
    while not any(broken.glob("resume-*.pth")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    _kill_everything(proc.pid)  # torchrun and both ranks, wherever they are
    proc.communicate()
    done = len(_metrics(broken))
    assert 1 <= done < 3, f"the kill came after {done} of 3 epochs"
    other = tmp_path / "broken-at-world-1"
    shutil.copytree(broken, other)

    out = _train("torch", 2, broken, cifar_dir, *epochs, "--resume")
    assert "resumed" in out
    assert [r["epoch"] for r in _metrics(broken)] == ["1", "2", "3"]
    a, final = _final_weights(whole)
    b, final_b = _final_weights(broken)
    assert final == final_b
    for key in a:
        assert np.array_equal(a[key], b[key]), key

    out = _train("torch", 1, other, cifar_dir, *epochs, "--resume")
    assert "resumed" in out
    assert [r["epoch"] for r in _metrics(other)] == ["1", "2", "3"]
    assert yaml.safe_load((other / "config.yaml").read_text())["world_size"] == 1
    c, _ = _final_weights(other)
    assert all(np.isfinite(v).all() for v in c.values())


@pytest.mark.slow
def test_killed_msrun_group_resumes_at_world_2_and_at_world_1(tmp_path, cifar_dir):
    epochs = ("--epochs", "3", "--model", "resnet10_w16")
    broken = tmp_path / "broken"
    proc = _train("mindspore", 2, broken, cifar_dir, *epochs, wait=False)
    deadline = time.time() + LAUNCH_TIMEOUT
    while not any(broken.glob("resume-*.ckpt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    _kill_everything(proc.pid)  # msrun, its scheduler and both workers
    proc.communicate()
    done = len(_metrics(broken))
    assert 1 <= done < 3, f"the kill came after {done} of 3 epochs"
    other = tmp_path / "broken-at-world-1"
    shutil.copytree(broken, other)

    for run, world in ((broken, 2), (other, 1)):
        out = _train("mindspore", world, run, cifar_dir, *epochs, "--resume")
        assert f"resumed {run} after epoch {done}" in out
        assert [r["epoch"] for r in _metrics(run)] == ["1", "2", "3"]
        assert yaml.safe_load((run / "config.yaml").read_text())["world_size"] == world
        weights, final = _final_weights(run)
        assert final.endswith("-3_3.ckpt") and all(np.isfinite(v).all() for v in weights.values())

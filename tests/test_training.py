"""The paired trainers: one config, the same schedule, checkpoints, resume, and step-level parity."""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from data_helpers import write_both_formats
from msport.errors import UserError
from msport.training import config as config_mod
from msport.training.config import TrainConfig, add_arguments, resolve
from msport.training.schedule import per_step_lr

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model", "resnet10_w16", "--batch-size", "16", "--lr", "0.05", "--num-workers", "1", "--no-progress"]


def _resolve(argv):
    return resolve(add_arguments(argparse.ArgumentParser()).parse_args(argv))


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    fixture = write_both_formats(tmp_path_factory.mktemp("cifar"), n_train=48, n_test=16)
    return str(fixture.binary_dir)  # the binary format, which MindSpore's own reader cannot take at this size


def _train(script, out, data_dir, *extra, timeout=300):
    cmd = [sys.executable, str(REPO / script), "--data", "cifar10", "--data-dir", data_dir, "--output-dir", str(out),
           *TINY, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _metrics(run):
    with open(Path(run) / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---- config ------------------------------------------------------------------------------

def test_flags_override_the_file_and_set_overrides_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: resnet18\nepochs: 7\nlr: 0.2\nmilestones: [3, 5]\n")
    cfg = _resolve(["--config", str(path), "--epochs", "3", "--set", "lr=0.05", "--no-progress"])
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.milestones, cfg.progress) == ("resnet18", 3, 0.05, [3, 5], False)


def test_unknown_keys_are_errors_in_the_file_and_in_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: resnet18\nlearning_rate: 0.1\n")
    with pytest.raises(UserError, match="unknown key.*learning_rate"):
        _resolve(["--config", str(path)])
    with pytest.raises(UserError, match="--set 'momentun=0.8'"):
        _resolve(["--set", "momentun=0.8"])
    with pytest.raises(UserError, match="schedule 'polynomial' unknown"):
        _resolve(["--set", "schedule=polynomial"])
    with pytest.raises(UserError, match="not found"):
        _resolve(["--config", str(tmp_path / "missing.yaml")])


def _flags(program):
    parser = add_arguments(argparse.ArgumentParser(), program)
    return {a.dest: a for a in parser._actions if a.dest not in ("help", "config", "set")}


def test_each_program_lists_its_own_flags_with_help_and_default():
    from msport.training.config import MINDSPORE, PARITY, TORCH

    torch_flags, ms_flags, parity_flags = _flags(TORCH), _flags(MINDSPORE), _flags(PARITY)
    # every key has a flag somewhere, but world_size: the launcher sets it, the run folder records it
    assert set(config_mod.FIELDS) - {"world_size"} == set(torch_flags) | set(ms_flags)
    assert "world_size" not in set(torch_flags) | set(ms_flags) | set(parity_flags)
    assert {"precision", "compile", "device_data"} <= set(torch_flags) and "init" not in torch_flags
    assert {"init", "mode", "ckpt_prefix"} <= set(ms_flags) and "precision" not in ms_flags
    assert not {"epochs", "resume", "output_dir", "progress", "init_from"} & set(parity_flags)
    for flags in (torch_flags, ms_flags, parity_flags):
        for name, action in flags.items():
            assert action.help and "(default: " in action.help, name
    assert torch_flags["compile"].choices == config_mod.COMPILE_MODES
    assert ms_flags["mode"].choices == config_mod.MODES


def test_values_are_type_and_range_checked_naming_their_origin(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: abc\n")
    with pytest.raises(UserError, match=r"config file .*c.yaml: lr must be a number, got 'abc'"):
        _resolve(["--config", str(path)])
    with pytest.raises(UserError, match=r"--set 'epochs=2.5': epochs must be an integer, got 2.5"):
        _resolve(["--set", "epochs=2.5"])
    with pytest.raises(UserError, match="is not a YAML value"):
        _resolve(["--set", "milestones=["])
    with pytest.raises(UserError, match="nesterov must be true or false, got 'yes please'"):
        _resolve(["--set", "nesterov=yes please"])
    with pytest.raises(UserError, match="momentum must be below 1, got 1.5"):
        _resolve(["--momentum", "1.5"])
    assert _resolve(["--set", "lr=1"]).lr == 1.0 and isinstance(_resolve(["--set", "lr=1"]).lr, float)


def test_threads_sets_torch_intra_op_threads():
    from msport.training import torch_side

    before = torch.get_num_threads()
    try:
        torch_side.setup(TrainConfig(model="resnet10_w16", threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_default_run_folder_names_the_init_scheme_as_such():
    cfg = TrainConfig(model="resnet10_w16", data="digits", init="legacy", seed=3)
    assert config_mod.run_dir(cfg, "mindspore") == os.path.join("runs", "mindspore-resnet10_w16-digits-init-legacy-seed3")
    assert config_mod.run_dir(cfg, "torch") == os.path.join("runs", "torch-resnet10_w16-digits-seed3")


# ---- schedule ----------------------------------------------------------------------------

@pytest.mark.parametrize("schedule,make", [
    ("cosine", lambda opt, cfg: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)),
    ("multistep", lambda opt, cfg: torch.optim.lr_scheduler.MultiStepLR(opt, cfg.milestones, cfg.gamma)),
    ("step", lambda opt, cfg: torch.optim.lr_scheduler.StepLR(opt, cfg.step_size, cfg.gamma)),
    ("constant", lambda opt, cfg: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)),
])
def test_per_step_schedule_equals_torch_scheduler_stepped_per_epoch(schedule, make):
    cfg = TrainConfig(schedule=schedule, epochs=12, lr=0.1, milestones=[4, 9], step_size=5, gamma=0.2)
    steps = 7
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    scheduler = make(opt, cfg)
    expected = []
    for _ in range(cfg.epochs):
        expected += [opt.param_groups[0]["lr"]] * steps
        opt.step()
        scheduler.step()
    np.testing.assert_allclose(per_step_lr(cfg, steps), expected, rtol=1e-6)


def test_warmup_rises_linearly_per_step_then_follows_the_schedule():
    cfg = TrainConfig(schedule="constant", epochs=4, lr=0.4, warmup_epochs=1)
    lrs = per_step_lr(cfg, 4)
    np.testing.assert_allclose(lrs[:4], [0.1, 0.2, 0.3, 0.4], rtol=1e-6)
    assert (lrs[4:] == np.float32(0.4)).all()


# ---- trainers end to end -------------------------------------------------------------------

def test_torch_trainer_writes_the_run_folder(tmp_path, cifar_dir):
    out = tmp_path / "torch"
    result = _train("train_torch.py", out, cifar_dir, "--epochs", "2")
    assert result.returncode == 0, result.stderr
    rows = _metrics(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    best = json.loads((out / "best.json").read_text())
    assert (out / best["checkpoint"]).is_file()
    names = sorted(os.listdir(out / "checkpoint"))
    assert len(names) == 2 and all(n.endswith("_resnet10_w16.pth") for n in names)
    assert names[0].startswith("1_") and f"{float(rows[0]['val_acc']):.2f}" in names[0]
    state = torch.load(out / "checkpoint" / names[1], weights_only=True)
    assert "layer1.0.bn1.running_mean" in state  # a plain state_dict, as the seed saved
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 2
    assert (out / "best.json").read_text().endswith("}\n")
    env = json.loads((out / "environment.json").read_text())
    assert len(env) == 1 and torch.__version__.startswith(env[0]["packages"]["torch"])
    assert env[0]["threads"]["torch_intra_op"] >= 1 and env[0]["cpu_count"] == os.cpu_count()
    assert "mindspore_runtime" not in env[0]["threads"]  # a torch-only process never started MindSpore


def test_mindspore_trainer_writes_model_checkpoint_names(tmp_path, cifar_dir):
    out = tmp_path / "ms"
    result = _train("train_ms.py", out, cifar_dir, "--epochs", "2", "--init", "legacy")
    assert result.returncode == 0, result.stderr
    # the prefix is derived from model and data, as ModelCheckpoint(prefix=...) would be set
    assert sorted(os.listdir(out / "checkpoint")) == ["train_resnet10_w16_cifar10-1_3.ckpt",
                                                       "train_resnet10_w16_cifar10-2_3.ckpt"]
    assert len(_metrics(out)) == 2 and (out / "resume-2.ckpt").is_file()
    env = json.loads((out / "environment.json").read_text())[0]
    assert env["packages"]["mindspore"] and env["threads"]["mindspore_runtime"] >= 1
    assert env["mindspore_cpu_setup"]["set_by"] in ("msport", "oneDNN default", "user")  # msport/_mindspore.py


def test_refuses_to_overwrite_a_run_and_to_resume_with_other_settings(tmp_path, cifar_dir):
    out = tmp_path / "torch"
    assert _train("train_torch.py", out, cifar_dir, "--epochs", "1").returncode == 0
    before = (out / "metrics.csv").read_bytes()
    again = _train("train_torch.py", out, cifar_dir, "--epochs", "1")
    assert again.returncode == 2 and "holds a finished run of 1 epochs" in again.stderr
    changed = _train("train_torch.py", out, cifar_dir, "--epochs", "1", "--resume", "--lr", "0.3")
    assert changed.returncode == 2 and "lr 0.05 -> 0.3" in changed.stderr
    assert (out / "metrics.csv").read_bytes() == before
    missing = _train("train_torch.py", tmp_path / "empty", cifar_dir, "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def _kill_after_first_epoch(script, out, data_dir, epochs):
    cmd = [sys.executable, str(REPO / script), "--data", "cifar10", "--data-dir", data_dir, "--output-dir", str(out),
           *TINY, "--epochs", str(epochs), "--deterministic"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume = out / ("resume-1.pth" if script == "train_torch.py" else "resume-1.ckpt")
    deadline = time.time() + 240
    while not resume.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(_metrics(out))


# torch's bit-identical resume is proven at every write point in tests/test_run_folder.py and across world
# sizes in tests/test_data_parallel.py; here MindSpore's, which is compared within a tolerance.
@pytest.mark.slow
@pytest.mark.parametrize("script,exact", [("train_ms.py", False)])
def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(tmp_path, cifar_dir, script, exact):
    epochs = 4
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert _train(script, whole, cifar_dir, "--epochs", str(epochs), "--deterministic").returncode == 0
    done = _kill_after_first_epoch(script, broken, cifar_dir, epochs)
    assert 1 <= done < epochs, f"the kill came after {done} of {epochs} epochs"
    resumed = _train(script, broken, cifar_dir, "--epochs", str(epochs), "--resume", "--deterministic")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    assert [e["resumed"] for e in json.loads((broken / "environment.json").read_text())] == [False, True]
    assert [r["epoch"] for r in _metrics(broken)] == [str(e) for e in range(1, epochs + 1)]
    final = sorted(os.listdir(whole / "checkpoint"))[-1]
    assert final in os.listdir(broken / "checkpoint")
    a, b = _load_weights(whole / "checkpoint" / final), _load_weights(broken / "checkpoint" / final)
    for key in a:
        if exact:
            assert np.array_equal(a[key], b[key]), key
        else:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-5, err_msg=key)


def _load_weights(path):
    from msport.checkpoints import load_any

    return load_any(path)[1]


# ---- starting both frameworks from the same weights -----------------------------------------

def test_init_from_gives_both_trainers_the_same_start(tmp_path):
    import reference_torch
    from msport.convert import torch_to_mindspore
    from msport.training import ms_side, torch_side

    torch.manual_seed(5)
    source = reference_torch.create_model("resnet10_w16")
    torch.save(source.state_dict(), tmp_path / "start.pth")
    cfg = TrainConfig(model="resnet10_w16", init_from=str(tmp_path / "start.pth"), seed=99)
    torch_model = torch_side.build_model(cfg, torch_side.setup(cfg))
    ms_model = ms_side.build_model(cfg, None)
    expected, _ = torch_to_mindspore(source.state_dict())
    for name, value in ms_side.parameters_numpy(ms_model).items():
        assert np.array_equal(value, expected[name]), name
    for name, value in torch_side.parameters_numpy(torch_model).items():
        assert np.array_equal(value, source.state_dict()[name].numpy()), name


# ---- step-level parity ----------------------------------------------------------------------

def _parity(cfg, data_dir, steps):
    from msport.training.data import load_splits
    from msport.training.parity import run_parity

    train_set, _ = load_splits(cfg)
    return run_parity(cfg, train_set, steps)


def test_parity_first_step_losses_agree_and_weight_decay_reaches_batchnorm(cifar_dir):
    cfg = TrainConfig(model="resnet10_w16", data="cifar10", data_dir=cifar_dir, batch_size=16, lr=0.01,
                      weight_decay=5e-2, progress=False)
    result = _parity(cfg, cifar_dir, 3)
    records = result.records
    assert records[0].loss_rel_diff < 1e-5 and result.passed, result.verdict
    # worst_param is a torch name, as documented
    assert all(r.worst_param.rpartition(".")[2] in ("weight", "bias", "running_mean", "running_var") for r in records)
    # A large weight decay on gamma (initialised at 1) would leave gamma 5e-4 apart after one step had
    # MindSpore's beta/gamma filter skipped it; the update must match torch's to rounding.
    assert records[0].max_param_diff < 1e-5, records[0].worst_param


def test_parity_flags_a_planted_learning_rate_bug(cifar_dir, monkeypatch):
    from msport.training import ms_side

    step = ms_side.Stepper.__call__
    monkeypatch.setattr(ms_side.Stepper, "__call__", lambda self, x, y, lr, *rest: step(self, x, y, lr * 1.5, *rest))
    cfg = TrainConfig(model="resnet10_w16", data="cifar10", data_dir=cifar_dir, batch_size=16, lr=0.05,
                      progress=False)
    result = _parity(cfg, cifar_dir, 3)
    assert result.records[0].max_param_rel_diff > 0.1
    # the library's verdict names step 2, the first loss computed after the wrong update
    assert 2 in result.flagged_steps and not result.passed and "step(s) [2" in result.verdict


def test_parity_train_command_prints_each_row_as_its_step_finishes_and_json(tmp_path, cifar_dir, capsys,
                                                                             monkeypatch):
    from msport.cli import main
    from msport.training import parity

    real = parity.iter_parity
    printed_before = []

    def watched(*args):  # the real steps; notes what the console shows before each next step starts
        for record in real(*args):
            yield record
            printed_before.append(capsys.readouterr().out)

    monkeypatch.setattr(parity, "iter_parity", watched)
    code = main(["parity-train", "--data", "cifar10", "--data-dir", cifar_dir, "--model", "resnet10_w16",
                 "--batch-size", "16", "--steps", "3", "--json", str(tmp_path / "p.json")])
    out = "".join(printed_before) + capsys.readouterr().out
    assert code == 0, out
    assert "verdict: MindSpore follows torch" in out
    rows = [[line.split()[0] for line in chunk.splitlines() if line.split() and line.split()[0].isdigit()]
            for chunk in printed_before]
    assert rows == [["1"], ["2"], ["3"]]  # step 1's row was on the console before step 2 began
    report = json.loads((tmp_path / "p.json").read_text())
    assert len(report["steps"]) == 3 and report["summary"]["flagged_steps"] == []


def test_bf16_autocast_step_computes_the_same_loss_to_bf16_precision():
    # The GPU-only --precision bf16 path, exercised on the CPU where autocast also runs.
    import copy

    import reference_torch
    from msport.training import torch_side

    torch.manual_seed(0)
    models = [reference_torch.create_model("resnet10_w16")]
    models.append(copy.deepcopy(models[0]))
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    losses = []
    for model, precision in zip(models, ("fp32", "bf16")):
        cfg = TrainConfig(model="resnet10_w16", precision=precision)
        stepper = torch_side.Stepper(model, torch_side.build_optimizer(cfg, model), cfg, torch.device("cpu"))
        loss_sum, correct = stepper(x, y, 0.05)
        assert isinstance(loss_sum, float) and isinstance(correct, int)
        losses.append(loss_sum / len(y))
    assert losses[0] != losses[1]  # autocast really ran in bfloat16
    assert abs(losses[0] - losses[1]) < 2e-2 * losses[0]


# ---- one learning-rate source ------------------------------------------------------------------

@pytest.mark.parametrize("framework", ["torch", "mindspore"])
def test_each_framework_applies_the_loops_learning_rate_at_every_step(cifar_dir, framework):
    """metrics.csv logs ``side.applied_lr``: read back from the framework's optimizer, it must be the loop's value
    at every step (warm-up changes it at each one), and the step must use it, not the one before."""
    from msport.training import ms_side, torch_side
    from msport.training.data import load_splits

    side = torch_side if framework == "torch" else ms_side
    cfg = TrainConfig(model="resnet10_w16", data="cifar10", data_dir=cifar_dir, batch_size=16, lr=0.1, epochs=3,
                      warmup_epochs=1, weight_decay=0.0, progress=False, num_workers=1)
    device = side.setup(cfg)
    loader = side.make_loader(load_splits(cfg)[0], cfg, train=True)
    lrs = per_step_lr(cfg, len(loader))
    assert len(set(lrs[:len(loader)].tolist())) == len(loader)  # a new value at each step of the epoch
    model = side.build_model(cfg, device)
    twin = side.build_model(cfg, device)
    _copy_weights(side, model, twin)
    before = side.parameters_numpy(model)
    optimizer, twin_optimizer = side.build_optimizer(cfg, model), side.build_optimizer(cfg, twin)
    stepper, twin_stepper = side.Stepper(model, optimizer, cfg, device), side.Stepper(twin, twin_optimizer, cfg, device)
    side.train_mode(model, True)
    side.train_mode(twin, True)
    for i, (x, y) in enumerate(loader):
        stepper(x, y, lrs[i], loader.global_batch_size(i))
        assert side.applied_lr(optimizer) == float(lrs[i]), f"step {i}"
        if i == 0:  # the same first step at twice the rate moves every weight twice as far
            twin_stepper(x, y, 2 * lrs[i], loader.global_batch_size(i))
            one, two = side.parameters_numpy(model), side.parameters_numpy(twin)
            np.testing.assert_allclose(two["conv1.weight"] - before["conv1.weight"],
                                       2 * (one["conv1.weight"] - before["conv1.weight"]), rtol=1e-3, atol=1e-7)


def _copy_weights(side, source, target):
    if side.FRAMEWORK == "torch":
        target.load_state_dict(source.state_dict())
    else:
        from msport._mindspore import ms

        ms.load_param_into_net(target, {p.name: ms.Parameter(p.data.copy(), p.name) for p in source.get_parameters()})

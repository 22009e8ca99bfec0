"""The PyTorch half of the paired trainers (``train_torch.py``). Never imports MindSpore."""

import random
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from msport import resolve
from msport.convert import load_file_into_torch
from msport.errors import UserError, first_line
from msport.files import atomic_write
from msport.training.config import check_model, name_slug
from msport.training.recipe import optimizer_arguments
from msport.training.parallel import SINGLE, World, check_batch_size, torchrun_world
from msport.training.run import RESUME_FILES

FRAMEWORK = "torch"
RESUME_FILE = RESUME_FILES[FRAMEWORK]
GPU_EVAL_BATCH = 1024
_world = SINGLE  # set by setup(): this process's place in a torchrun group


def setup(cfg):
    """Check the device, join torchrun's process group if started by it, seed; returns this rank's device."""
    global _world
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {cfg.device}: no CUDA device visible to torch; use --device cpu")
    if not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise UserError(f"--device {cfg.device}: train_torch.py runs on cpu or cuda")
    if cfg.device == "cpu" and (cfg.precision != "fp32" or cfg.compile != "off"):
        raise UserError("--precision and --compile are for --device cuda; drop them on the CPU")
    check_model(cfg, FRAMEWORK)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg.threads = torch.get_num_threads()  # recorded: torch's CPU kernels round differently at another count
    if cfg.sync_bn and not _on_cuda(cfg):
        raise UserError("--sync-bn: torch's SyncBatchNorm needs CUDA; on the CPU each rank keeps its own "
                        "BatchNorm statistics (drop --sync-bn)")
    launched = torchrun_world()
    check_batch_size(cfg.batch_size, launched)
    if launched.distributed:
        if _on_cuda(cfg):
            torch.cuda.set_device(_rank_device(cfg, launched))
        dist.init_process_group("nccl" if _on_cuda(cfg) else "gloo")
        launched = World(dist.get_rank(), dist.get_world_size(), launched.local_rank)
    _world = launched
    cfg.world_size = _world.size
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    _set_fp32_precision(cfg.precision == "tf32")
    return torch.device(_rank_device(cfg, _world))


def world():
    return _world


def _rank_device(cfg, world_):
    """Each rank of a node on its own GPU: plain ``cuda`` becomes ``cuda:LOCAL_RANK``."""
    if cfg.device == "cuda" and world_.distributed:
        return f"cuda:{world_.local_rank}"
    return cfg.device


def _set_fp32_precision(allow_tf32):
    """fp32 means IEEE fp32: cuDNN would otherwise run convolutions in TF32 on Ampere and later."""
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32


def _on_cuda(cfg):
    return cfg.device.startswith("cuda")


def build_model(cfg, device):
    model = resolve.torch_model(cfg.model, num_classes=cfg.num_classes)
    if cfg.init_from:
        load_file_into_torch(model, cfg.init_from)
    if cfg.sync_bn and _world.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # same parameter and buffer names
    model = model.to(device)
    if _on_cuda(cfg):
        model = model.to(memory_format=torch.channels_last)  # same parameters, NHWC kernels
    return model


def build_optimizer(cfg, model):
    """The config's torch optimizer (:mod:`msport.training.recipe`); torch decays every parameter, BatchNorm's
    included."""
    name, kwargs = optimizer_arguments(cfg)
    return getattr(torch.optim, name)(model.parameters(), **kwargs)


class Stepper:
    """One optimisation step at a given learning rate; returns (loss sum, correct count) of this rank's samples.

    On CUDA both come back as device tensors, so the loop adds them up without
    a host synchronisation per step; on the CPU they are plain numbers.
    Under torchrun the model runs inside DistributedDataParallel, which
    averages the gradients over the ranks; ``global_batch`` is the step's
    batch size over all ranks (see :mod:`msport.training.parallel`).
    """

    def __init__(self, model, optimizer, cfg, device):
        self.model, self.optimizer, self.device, self.cfg = model, optimizer, device, cfg
        self.world = _world
        net = model
        if self.world.distributed:
            # Per-rank BatchNorm statistics, as MindSpore keeps them: no broadcast of rank 0's buffers
            # each step; the loop averages them before evaluating.
            with warnings.catch_warnings():  # torch asks to keep broadcast_buffers=False for rank-local buffers
                warnings.filterwarnings("ignore", "`broadcast_buffers` is deprecated", FutureWarning)
                net = torch.nn.parallel.DistributedDataParallel(
                    model, device_ids=[device] if _on_cuda(cfg) else None, broadcast_buffers=False)
        self.forward = net if cfg.compile == "off" else torch.compile(net, mode=cfg.compile)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        self.sync = not _on_cuda(cfg)

    def __call__(self, x, y, lr, global_batch=None):
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)
        x, y = _to(x, self.device), _to(y, self.device).long()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            logits = self.forward(x)
            smoothing = self.cfg.label_smoothing
            if self.world.distributed:  # DDP's mean over ranks of this makes the global batch's mean
                loss = F.cross_entropy(logits, y, reduction="sum", label_smoothing=smoothing) * (
                    self.world.size / global_batch)
            else:
                loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        loss.backward()
        if self.cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
        self.optimizer.step()
        scale = global_batch / self.world.size if self.world.distributed else len(y)
        loss_sum, correct = loss.detach() * scale, (logits.argmax(1) == y).sum()
        return (loss_sum.item(), correct.item()) if self.sync else (loss_sum, correct)


def applied_lr(optimizer):
    """The learning rate the last step used, read back from the optimizer."""
    return optimizer.param_groups[0]["lr"]


def all_reduce_sum(values, device):
    """Sums of ``values`` (numbers) over every rank; the values themselves in a single process."""
    if not _world.distributed:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def average_batchnorm_statistics(model):
    """Every rank gets the mean of the ranks' running statistics, so all evaluate and save one model."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            for buffer in (module.running_mean, module.running_var):
                dist.all_reduce(buffer)
                buffer /= _world.size


def _to(t, device):
    t = torch.as_tensor(t)
    return t.to(device, non_blocking=True)


def probe_forward(model, x, device):
    """(type name, shape or None) of the model's output on ``x``: eval mode, no gradients, RNG untouched."""
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(_to(x, device))
    finally:
        model.train(training)
    return type(out).__name__, (tuple(out.shape) if isinstance(out, torch.Tensor) else None)


def train_mode(model, training):
    model.train(training)


@torch.no_grad()
def evaluate(model, loader, device):
    """(mean loss, accuracy %) over every validation sample, each rank scoring its shard; one host
    synchronisation at the end."""
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count = 0
    for x, y in loader:
        x, y = _to(x, device), _to(y, device).long()
        logits = model(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        count += len(y)
    loss_sum, correct, count = all_reduce_sum([loss_sum.item(), correct.item(), count], device)
    return loss_sum / count, 100.0 * correct / count


def make_loader(ds, cfg, *, train, epoch=0):
    augment = shuffle = train and not cfg.deterministic
    if _on_cuda(cfg) and cfg.device_data and not ds.is_sequence:  # the GPU loader crops and flips images
        from msport.data.torch_device import make_device_loader

        # Evaluation batches only need to fill the GPU: per-sample results do not depend on them.
        batch_size = cfg.batch_size if train else max(cfg.batch_size, GPU_EVAL_BATCH)
        return make_device_loader(ds, batch_size, device=_rank_device(cfg, _world), train=train, augment=augment,
                                  seed=cfg.seed, epoch=epoch, shuffle=shuffle, channels_last=True,
                                  rank=_world.rank, world=_world.size)
    from msport.data import make_torch_loader

    return make_torch_loader(ds, cfg.batch_size, train=train, augment=augment, seed=cfg.seed, epoch=epoch,
                             num_workers=cfg.num_workers, shuffle=shuffle, pin_memory=_on_cuda(cfg),
                             rank=_world.rank, world=_world.size)


def checkpoint_name(cfg, epoch, steps, val_acc):
    """The case study's PyTorch naming: ``{epoch}_{val_acc}_{model}.pth``."""
    del steps
    return f"{epoch}_{val_acc:.2f}_{name_slug(cfg.model)}.pth"  # a spec such as dir/mine.py:Net holds a /


def save_checkpoint(model, path):
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))


def save_resume(model, optimizer, epoch, path):
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
             "torch_rng": torch.get_rng_state()}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume(model, optimizer, path, epoch):
    """Restore model, optimizer and RNG saved after ``epoch``."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if int(state["epoch"]) != epoch:
            raise ValueError(f"it holds epoch {state['epoch']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    except Exception as exc:  # noqa: BLE001 - torch raises several types for cut or replaced files
        raise UserError(f"{path} is not this run's resume file after epoch {epoch} ({type(exc).__name__}: "
                        f"{first_line(exc)}); the run cannot continue from it: start a new one in another "
                        f"--output-dir") from exc


def parameters_numpy(model):
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}

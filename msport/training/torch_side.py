"""The PyTorch half of the paired trainers (``train_torch.py``). Never imports MindSpore."""

import random

import numpy as np
import torch
import torch.nn.functional as F

import reference_torch
from msport.convert import load_file_into_torch
from msport.errors import UserError, first_line
from msport.files import atomic_write
from msport.training.config import check_model
from msport.training.run import RESUME_FILES

FRAMEWORK = "torch"
RESUME_FILE = RESUME_FILES[FRAMEWORK]
GPU_EVAL_BATCH = 1024


def setup(cfg):
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {cfg.device}: no CUDA device visible to torch; use --device cpu")
    if not (cfg.device == "cpu" or cfg.device.startswith("cuda")):
        raise UserError(f"--device {cfg.device}: train_torch.py runs on cpu or cuda")
    if cfg.device == "cpu" and (cfg.precision != "fp32" or cfg.compile != "off"):
        raise UserError("--precision and --compile are for --device cuda; drop them on the CPU")
    check_model(cfg, reference_torch.list_models())
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    _set_fp32_precision(cfg.precision == "tf32")
    return torch.device(cfg.device)


def _set_fp32_precision(allow_tf32):
    """fp32 means IEEE fp32: cuDNN would otherwise run convolutions in TF32 on Ampere and later."""
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32


def _on_cuda(cfg):
    return cfg.device.startswith("cuda")


def build_model(cfg, device):
    model = reference_torch.create_model(cfg.model, num_classes=cfg.num_classes)
    if cfg.init_from:
        load_file_into_torch(model, cfg.init_from)
    model = model.to(device)
    if _on_cuda(cfg):
        model = model.to(memory_format=torch.channels_last)  # same parameters, NHWC kernels
    return model


def build_optimizer(cfg, model):
    """SGD with momentum; torch decays every parameter, BatchNorm's included."""
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)


class Stepper:
    """One optimisation step at a given learning rate; returns (loss sum, correct count).

    On CUDA both come back as device tensors, so the loop adds them up without
    a host synchronisation per step; on the CPU they are plain numbers.
    """

    def __init__(self, model, optimizer, cfg, device):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.forward = model if cfg.compile == "off" else torch.compile(model, mode=cfg.compile)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
        self.sync = not _on_cuda(cfg)

    def __call__(self, x, y, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = float(lr)
        x, y = _to(x, self.device), _to(y, self.device).long()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            logits = self.forward(x)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        self.optimizer.step()
        loss_sum, correct = loss.detach() * len(y), (logits.argmax(1) == y).sum()
        return (loss_sum.item(), correct.item()) if self.sync else (loss_sum, correct)


def _to(t, device):
    t = torch.as_tensor(t)
    return t.to(device, non_blocking=True)


def train_mode(model, training):
    model.train(training)


@torch.no_grad()
def evaluate(model, loader, device):
    """(mean loss, accuracy %) over every validation sample; one host synchronisation at the end."""
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
    return loss_sum.item() / count, 100.0 * correct.item() / count


def make_loader(ds, cfg, *, train, epoch=0):
    augment = shuffle = train and not cfg.deterministic
    if _on_cuda(cfg) and cfg.device_data:
        from msport.data.torch_device import make_device_loader

        # Evaluation batches only need to fill the GPU: per-sample results do not depend on them.
        batch_size = cfg.batch_size if train else max(cfg.batch_size, GPU_EVAL_BATCH)
        return make_device_loader(ds, batch_size, device=cfg.device, train=train, augment=augment,
                                  seed=cfg.seed, epoch=epoch, shuffle=shuffle, channels_last=True)
    from msport.data import make_torch_loader

    return make_torch_loader(ds, cfg.batch_size, train=train, augment=augment, seed=cfg.seed, epoch=epoch,
                             num_workers=cfg.num_workers, shuffle=shuffle, pin_memory=_on_cuda(cfg))


def checkpoint_name(cfg, epoch, steps, val_acc):
    """The seed's PyTorch naming: ``{epoch}_{val_acc}_{model}.pth``."""
    del steps
    return f"{epoch}_{val_acc:.2f}_{cfg.model}.pth"


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

"""The MindSpore half of the paired trainers (``train_ms.py``).

Matches :mod:`msport.training.torch_side` step for step: the same SGD update
with weight decay on every parameter, the same learning rate at every step
(the loop's, written into the optimizer by the step itself), cross-entropy
with mean reduction. Under msrun it trains data parallel
(``ParallelMode.DATA_PARALLEL``, gradients averaged over the ranks).
"""

import os
from collections import OrderedDict

import numpy as np

from msport._mindspore import ms, nn, ops
from msport.convert import load_file_into_ms
from msport.checkpoints import load_ms_checkpoint, save_ms_checkpoint
from msport.errors import UserError, first_line
from msport import resolve
from msport import optim
from msport.layers import build
from msport.optim import catalog, clip_grad_norm
from msport.training.config import check_model, name_slug
from msport.training.recipe import optimizer_arguments
from msport.training.parallel import SINGLE, World, check_batch_size, msrun_world
from msport.training.run import RESUME_FILES

FRAMEWORK = "mindspore"
RESUME_FILE = RESUME_FILES[FRAMEWORK]
DEVICE_TARGETS = {"cpu": "CPU", "gpu": "GPU", "cuda": "GPU", "ascend": "Ascend"}
_world = SINGLE  # set by setup(): this process's place in an msrun group


def setup(cfg):
    """Set mode and device, join msrun's group if started by it, seed; returns the device target."""
    global _world
    target = DEVICE_TARGETS.get(cfg.device.split(":")[0].lower())
    if target is None:
        raise UserError(f"--device {cfg.device}: train_ms.py runs on cpu, gpu or ascend")
    if cfg.precision != "fp32" or cfg.compile != "off":
        print("note: precision and compile are train_torch.py options; train_ms.py runs fp32 as compiled by "
              "its own GRAPH_MODE", flush=True)
    check_model(cfg, FRAMEWORK)
    if cfg.threads and not _threads_set():
        # CPU kernels' pool; may be set once a process. cfg.threads holds OMP_NUM_THREADS when no count was
        # asked for (config.resolve), as torchrun / msrun set it per rank: MindSpore would otherwise run 25.
        ms.device_context.cpu.op_tuning.threads_num(cfg.threads)
    if cfg.sync_bn:
        raise UserError("--sync-bn: MindSpore's nn.SyncBatchNorm runs on Ascend only and train_ms.py does not "
                        "swap it in; drop --sync-bn (each rank keeps its own BatchNorm statistics)")
    launched = msrun_world()
    check_batch_size(cfg.batch_size, launched)
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == "graph" else ms.PYNATIVE_MODE)
    if target != "CPU" and launched.distributed:
        ms.set_device(target, launched.local_rank)  # one device per rank of a node
    elif ms.get_context("device_target") != target:  # set_device refuses once kernels have run in the process
        ms.set_device(target)
    if os.environ.get("MS_ROLE"):  # started by msrun
        from mindspore.communication import get_group_size, get_rank, init

        init()  # msrun's scheduler process runs this script too: there init() serves the cluster, then exits
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                     device_num=get_group_size())
        launched = World(get_rank(), get_group_size(), launched.local_rank)
    _world = launched
    cfg.world_size = _world.size
    ms.set_seed(cfg.seed)
    return target


def world():
    return _world


def _threads_set():
    from mindspore._c_expression import RuntimeConf

    return RuntimeConf.get_instance().is_op_threads_num_configured()


def build_model(cfg, device):
    del device
    net = resolve.ms_model(cfg.model, num_classes=cfg.num_classes, init=cfg.init)
    if cfg.init_from:
        load_file_into_ms(net, cfg.init_from)
    return net


def build_optimizer(cfg, net):
    """The config's optimizer as :mod:`msport.optim` computes it (torch's semantics), over one explicit
    group: every parameter decays, as in torch (MindSpore's own optimizers skip 'beta'/'gamma' names when
    ungrouped, and ``nn.Momentum(use_nesterov=True)`` takes plain momentum steps on the CPU). Each step
    sets the learning rate to the loop's value for that step, so the loop's schedule is the only one.
    ``ms_recipe: mindspore`` builds MindSpore's own look-alike instead (:func:`catalog.builtin_port`), as a
    port written from MindSpore's docs would, to measure what those differences cost."""
    name, kwargs = optimizer_arguments(cfg)
    if cfg.ms_recipe == "mindspore":  # MindSpore's look-alike, an ungrouped list: its own decay filter applies
        builtin, arguments = catalog.builtin_port(name, kwargs)
        return getattr(nn, builtin)(net.trainable_params(), **arguments)
    return getattr(optim, name)(net.trainable_params(), **kwargs)


class _TrainStep(nn.Cell):
    """Set the learning rate, forward, loss, gradients and update as one cell: GRAPH_MODE compiles it
    into one graph (measured ~1.5x faster per step here than ``ms.jit`` on the same function).

    Under msrun the gradients are averaged over the ranks, and each rank's loss is its samples' sum
    scaled by ``scale`` = world / global batch, so the average is the global batch's mean gradient.
    """

    def __init__(self, net, optimizer, distributed, label_smoothing=0.0, clip_grad_norm=None, builtins=False):
        super().__init__(auto_prefix=False)
        self.net = net
        self.optimizer = optimizer
        self.distributed = distributed
        self.clip = clip_grad_norm
        self.builtins = builtins  # ms_recipe mindspore: MindSpore's own loss and clipping
        self.torch_semantics = isinstance(optimizer, optim.TorchOptimizer)
        reduction = "sum" if distributed else "mean"
        # torch's CrossEntropyLoss (the registry's twin); without smoothing, the sparse kernel (same values)
        if builtins:
            self.loss_fn = nn.CrossEntropyLoss(reduction=reduction, label_smoothing=label_smoothing)
        elif label_smoothing:
            self.loss_fn = build("CrossEntropyLoss", reduction=reduction, label_smoothing=label_smoothing)
        else:
            self.loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction=reduction)
        self.value_and_grad = ms.value_and_grad(self.forward, None, optimizer.parameters, has_aux=True)
        self.grad_reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True) if distributed else None
        self.assign = ops.Assign()

    def forward(self, x, y, scale):
        logits = self.net(x)
        loss = self.loss_fn(logits, y)
        if self.distributed:
            loss = loss * scale
        return loss, logits

    def construct(self, x, y, lr, scale):
        if self.torch_semantics:
            lr_set = self.optimizer.set_lr(lr)
        else:  # a mindspore.nn optimizer (parity-train judging one): its single learning-rate Parameter
            lr_set = self.assign(self.optimizer.learning_rate, lr)
        (loss, logits), grads = self.value_and_grad(x, y, scale)
        if self.distributed:
            grads = self.grad_reducer(grads)
        if self.clip and self.builtins:
            grads = ops.clip_by_global_norm(grads, self.clip)
        elif self.clip:
            grads = clip_grad_norm(grads, self.clip)[0]
        grads = ops.depend(grads, lr_set)  # the update reads the learning rate just written
        self.optimizer(grads)
        return loss, (logits.argmax(1) == y).sum()


class Stepper:
    """One optimisation step at a given learning rate; returns (loss sum, correct count) of this rank's samples."""

    def __init__(self, net, optimizer, cfg, device=None):
        del device  # the execution mode was set in setup()
        self.world = _world
        self._step = _TrainStep(net, optimizer, self.world.distributed, cfg.label_smoothing, cfg.clip_grad_norm,
                                builtins=cfg.ms_recipe == "mindspore")

    def __call__(self, x, y, lr, global_batch=None):
        x, y = _tensor(x, _input_dtype(x)), _tensor(y, np.int32)
        n = y.shape[0]
        scale = self.world.size / global_batch if self.world.distributed else 1.0
        loss, correct = self._step(x, y, ms.Tensor(lr, ms.float32), ms.Tensor(scale, ms.float32))
        loss_sum = float(loss.asnumpy()) / scale if self.world.distributed else float(loss.asnumpy()) * n
        return loss_sum, int(correct.asnumpy())


def applied_lr(optimizer):
    """The learning rate the last step used, read back from the optimizer's Parameter."""
    if isinstance(optimizer, optim.TorchOptimizer):
        return optimizer.current("lr")
    return float(optimizer.learning_rate.asnumpy())  # a mindspore.nn optimizer's single rate


def all_reduce_sum(values, device=None):
    """Sums of ``values`` (numbers) over every rank; the values themselves in a single process."""
    del device
    values = [float(v) for v in values]
    if not _world.distributed:
        return values
    summed = ops.AllReduce()(ms.Tensor(np.asarray(values, np.float32)))
    return [float(v) for v in summed.asnumpy()]


def average_batchnorm_statistics(net):
    """Every rank gets the mean of the ranks' moving statistics, so all evaluate and save one model."""
    reduce = ops.AllReduce()
    for p in net.get_parameters():
        if p.name.endswith(("moving_mean", "moving_variance")):
            p.set_data(reduce(p) / _world.size)


def _input_dtype(x):
    """float32 for images and features, int32 for token ids (a user's --data may yield either)."""
    kind = x.dtype.kind if hasattr(x, "dtype") and not isinstance(x, ms.Tensor) else "f"
    return np.int32 if kind in "iu" else np.float32


def _tensor(a, dtype):
    if isinstance(a, ms.Tensor):  # from the MindSpore pipeline: already float32 / int32
        return a
    return ms.Tensor(np.asarray(a, dtype))


def probe_forward(net, x, device=None):
    """(type name, shape or None) of the network's output on ``x``, in evaluation mode and PYNATIVE_MODE.

    PyNative raises a failing forward as a Python exception; GRAPH_MODE's compiler would also print its
    own 30 lines of C++ log to stderr and dump ``rank_0/om/analyze_fail.ir`` into the working folder.
    """
    del device
    training, mode = net.training, ms.get_context("mode")
    net.set_train(False)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        out = net(_tensor(x, _input_dtype(x)))
    finally:
        ms.set_context(mode=mode)
        net.set_train(training)
    return type(out).__name__, (tuple(out.shape) if isinstance(out, ms.Tensor) else None)


def train_mode(net, training):
    net.set_train(training)


def evaluate(net, loader, device=None):
    """(mean loss, accuracy %) over every validation sample, each rank scoring its shard."""
    del device
    net.set_train(False)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="sum")
    loss_sum, correct, count = 0.0, 0, 0
    for x, y in loader:
        x, y = _tensor(x, _input_dtype(x)), _tensor(y, np.int32)
        logits = net(x)
        loss_sum += float(loss_fn(logits, y).asnumpy())
        correct += int((logits.argmax(1) == y).sum().asnumpy())
        count += y.shape[0]
    loss_sum, correct, count = all_reduce_sum([loss_sum, correct, count])
    return loss_sum / count, 100.0 * correct / count


class _EpochDataset:
    """Gives the MindSpore pipeline the torch loader's interface (set_epoch, len, iteration).

    One ``mindspore.dataset`` spans every remaining epoch, so its workers build the next
    batches while the current ones train and no pipeline is started per epoch (that start-up
    cost ~10% of a small model's epoch here). It is reopened only when the epoch asked for is
    not the one it would serve next (a resume, a jump) or when it has run out.
    """

    def __init__(self, ds, cfg, train, epoch):
        from msport.data import planned_batches

        self.ds, self.cfg, self.train, self.epoch = ds, cfg, train, epoch
        self.augment = train and not cfg.deterministic
        self.batches = planned_batches(ds, cfg.batch_size, train=train, augment=self.augment, seed=cfg.seed,
                                       shuffle=self.augment, rank=_world.rank, world=_world.size)
        self.steps = self.batches.steps
        self._rows, self._next_epoch, self._span_end = None, None, None

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.steps

    def global_batch_size(self, step):
        return self.batches.global_batch_size(step)

    def __iter__(self):
        if self._rows is None or self._next_epoch != self.epoch or self.epoch >= self._span_end:
            self._open(self.epoch)
        self._next_epoch = self.epoch + 1
        if not self.train:  # evaluation serves the same batches every pass: keep the span flowing
            self.epoch += 1
        for _ in range(self.steps):
            yield next(self._rows)

    def _open(self, epoch):
        from msport.data import make_ms_dataset

        span = max(self.cfg.epochs - epoch, 1)
        dataset = make_ms_dataset(self.ds, self.cfg.batch_size, train=self.train, augment=self.augment,
                                  seed=self.cfg.seed, start_epoch=epoch, num_epochs=span,
                                  num_workers=self.cfg.num_workers, shuffle=self.augment,
                                  rank=_world.rank, world=_world.size)
        self._rows = dataset.create_tuple_iterator(num_epochs=1, output_numpy=False)
        self._span_end = epoch + span


def make_loader(ds, cfg, *, train, epoch=0):
    return _EpochDataset(ds, cfg, train, epoch)


def checkpoint_name(cfg, epoch, steps, val_acc):
    """``ModelCheckpoint``'s naming: ``{prefix}-{epoch}_{steps per epoch}.ckpt``.

    The prefix defaults to ``train_{model}_{data}``; the case study's scripts wrote
    ``train_resnet_cifar10`` for ResNet50 on CIFAR-10 (set ``ckpt_prefix`` to match them).
    """
    del val_acc
    prefix = cfg.ckpt_prefix or f"train_{name_slug(cfg.model)}_{cfg.data}"
    return f"{prefix}-{epoch}_{steps}.ckpt"


def save_checkpoint(net, path):
    save_ms_checkpoint(parameters_numpy(net), path)


def save_resume(net, optimizer, epoch, path):
    arrays = parameters_numpy(net)
    arrays.update((p.name, p.asnumpy()) for p in optimizer.get_parameters() if p.name not in arrays)
    arrays["epoch"] = np.array(epoch, np.int64)
    save_ms_checkpoint(arrays, path)


def load_resume(net, optimizer, path, epoch):
    """Restore weights, momentum buffers and the optimizer's step saved after ``epoch``."""
    saved = load_ms_checkpoint(path)
    try:
        found = int(saved.pop("epoch").asnumpy())
        if found != epoch:
            raise ValueError(f"it holds epoch {found}")
        ms.load_param_into_net(net, saved, strict_load=True)
        ms.load_param_into_net(optimizer, saved, strict_load=False)
    except Exception as exc:  # noqa: BLE001 - a replaced or foreign file
        raise UserError(f"{path} is not this run's resume file after epoch {epoch} ({first_line(exc)}); the run "
                        f"cannot continue from it: start a new one in another --output-dir") from exc


def parameters_numpy(net):
    return OrderedDict((p.name, p.asnumpy().copy()) for p in net.get_parameters())

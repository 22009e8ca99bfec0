"""Step-level parity: both trainers' steps, from the same weights on the same batches.

Proof that ``train_torch.py`` and ``train_ms.py`` run one algorithm: the torch
model is built with the run's seed, its weights are converted into the
MindSpore model, and each framework's own optimizer, learning-rate schedule
and train step (the ones the trainers use) take the same deterministic
batches. Per step it records both losses and, after each update, the largest
parameter difference (BatchNorm running statistics included).

Float32 training of a BatchNorm network is chaotic: one ReLU whose input sits
within rounding of zero flips between two frameworks, shifts its channel's
batch statistics, and the difference grows step by step. Measured here
(resnet10_w16, digits, batch 64, lr 0.1) torch against *itself*, started from
weights perturbed by 1e-7 relative, drifts to 1e-2..2e-1 relative loss
difference within 20 steps. So a fixed loss tolerance cannot tell a porting
bug from rounding. The control run does: a second torch model, perturbed so,
trained on the same batches, gives the noise floor each step, and a step is
flagged only when MindSpore departs from torch by more than
``PARITY_CONTROL_FACTOR`` times that floor as well as by more than the tolerance.

:func:`run_parity` returns a :class:`ParityResult` (every step, the flagged ones,
the noise floor and the verdict); :class:`ParityJudge` applies that rule one step
at a time, for a caller that shows each step as it finishes.
"""

import dataclasses

from collections import OrderedDict

import numpy as np

from msport import registry
from msport.convert import layer_map, load_torch_weights_into_ms, mindspore_to_torch
from msport.data import planned_batches
from msport.tolerances import PARITY_CONTROL_FACTOR, PARITY_LOSS_REL
from msport.training import ms_side, torch_side
from msport.training.schedule import per_step_lr


@dataclasses.dataclass
class StepRecord:
    step: int
    lr: float
    torch_loss: float
    ms_loss: float
    loss_abs_diff: float
    loss_rel_diff: float
    max_param_diff: float      # max |torch - ms| over every parameter after this step's update
    max_param_rel_diff: float  # the same, relative to that parameter's largest magnitude
    worst_param: str           # torch name of the parameter with the largest relative difference
    control_loss_rel_diff: float  # torch vs perturbed torch: the rounding-noise floor at this step


CONTROL_PERTURBATION = 1e-7  # relative, random sign: about one float32 rounding step


@dataclasses.dataclass
class JudgedStep:
    record: StepRecord
    noise_floor: float   # the control's largest loss difference up to this step
    over_rtol: bool      # MindSpore's loss departs from torch's by more than the tolerance
    flagged: bool        # ... and by more than PARITY_CONTROL_FACTOR times the noise floor


@dataclasses.dataclass
class ParityResult:
    """What a parity run found: every step, judged, and the verdict."""

    steps: list          # of JudgedStep
    loss_rtol: float
    control_factor: float

    @property
    def records(self):
        return [j.record for j in self.steps]

    @property
    def flagged_steps(self):
        return [j.record.step for j in self.steps if j.flagged]

    @property
    def noise_floor(self):
        return max((j.noise_floor for j in self.steps), default=0.0)

    @property
    def passed(self):
        return not self.flagged_steps

    @property
    def verdict(self):
        if self.flagged_steps:
            return f"MindSpore departs from torch beyond rounding noise at step(s) {self.flagged_steps}"
        return "MindSpore follows torch within float32 rounding noise"

    def summary(self):
        worst = max(self.records, key=lambda r: r.loss_rel_diff)
        return {"flagged_steps": self.flagged_steps, "steps_over_rtol": sum(j.over_rtol for j in self.steps),
                "noise_floor": self.noise_floor, "max_loss_rel_diff": worst.loss_rel_diff,
                "max_loss_rel_diff_step": worst.step, "max_param_diff_after_step_1": self.records[0].max_param_diff,
                "verdict": self.verdict}

    def to_dict(self):
        return {"loss_rtol": self.loss_rtol, "control_factor": self.control_factor,
                "steps": [dict(dataclasses.asdict(j.record), noise_floor=j.noise_floor, flagged=j.flagged)
                          for j in self.steps],
                "summary": self.summary()}


class ParityJudge:
    """The verdict rule, one step at a time: a step is flagged when its loss difference exceeds
    ``loss_rtol`` and ``control_factor`` times the torch control's largest difference so far."""

    def __init__(self, loss_rtol=PARITY_LOSS_REL, control_factor=PARITY_CONTROL_FACTOR):
        self.loss_rtol, self.control_factor = loss_rtol, control_factor
        self.steps = []
        self._floor = 0.0

    def add(self, record):
        self._floor = max(self._floor, record.control_loss_rel_diff)
        over = record.loss_rel_diff > self.loss_rtol
        judged = JudgedStep(record, self._floor, over, over and record.loss_rel_diff > self.control_factor * self._floor)
        self.steps.append(judged)
        return judged

    def result(self):
        return ParityResult(list(self.steps), self.loss_rtol, self.control_factor)


def run_parity(cfg, train_set, steps, loss_rtol=PARITY_LOSS_REL, control_factor=PARITY_CONTROL_FACTOR, **options):
    """Train both sides (and the torch control) ``steps`` steps in train mode; a :class:`ParityResult`.
    ``options``: see :func:`iter_parity`."""
    judge = ParityJudge(loss_rtol, control_factor)
    for record in iter_parity(cfg, train_set, steps, **options):
        judge.add(record)
    return judge.result()


class _Batches:
    """A user's batches (``--data``), cycled as epochs when the run takes more steps than it yields."""

    def __init__(self, items):
        self.items = list(items)
        self.steps = len(self.items)

    def batch(self, epoch, step):
        del epoch
        return self.items[step]


def iter_parity(cfg, train_set, steps, models=None, batches=None, ms_optimizer=None):
    """:func:`run_parity` one step at a time: yields each :class:`StepRecord` as soon as its step is done.

    ``models``: ``(torch_model, ms_model)`` to compare instead of the config's ``model`` (MindSpore's gets
    torch's weights); ``batches``: ``(inputs, targets)`` numpy pairs instead of ``train_set`` (any dtype:
    token ids too); ``ms_optimizer(ms_model)``: the MindSpore optimizer to judge instead of the config's
    (a planted ``nn.AdamWeightDecay``, say). Dropout (and attention dropout) is off on both sides: two
    frameworks cannot draw the same masks.
    """
    batches = _Batches(batches) if batches is not None else planned_batches(
        train_set, cfg.batch_size, train=True, augment=False, seed=cfg.seed, shuffle=False)
    device = torch_side.setup(cfg)
    ms_side.setup(cfg)
    if models is None:
        torch_model, ms_model = torch_side.build_model(cfg, device), ms_side.build_model(cfg, None)
    else:
        torch_model, ms_model = models
        torch_model = torch_model.to(device)
    load_torch_weights_into_ms(ms_model, torch_model.state_dict())
    control_model = _perturbed_copy(torch_model, cfg.seed)
    cfg = dataclasses.replace(cfg, epochs=max(cfg.epochs, -(-steps // batches.steps)))
    lrs = per_step_lr(cfg, batches.steps)
    torch_opt = torch_side.build_optimizer(cfg, torch_model)
    ms_opt = ms_optimizer(ms_model) if ms_optimizer else ms_side.build_optimizer(cfg, ms_model)
    torch_step = torch_side.Stepper(torch_model, torch_opt, cfg, device)
    control_step = torch_side.Stepper(control_model, torch_side.build_optimizer(cfg, control_model), cfg, device)
    ms_step = ms_side.Stepper(ms_model, ms_opt, cfg)
    for model in (torch_model, control_model):
        torch_side.train_mode(model, True)
        _torch_dropout_off(model)
    ms_side.train_mode(ms_model, True)
    _ms_dropout_off(ms_model)
    for step in range(steps):
        x, y = batches.batch(*divmod(step, batches.steps))
        t_loss = torch_step(x, y, lrs[step])[0] / len(y)
        m_loss = ms_step(x, y, lrs[step])[0] / len(y)
        c_loss = control_step(x, y, lrs[step])[0] / len(y)
        diff, rel, worst = _param_difference(torch_model, ms_model)
        yield StepRecord(step + 1, float(lrs[step]), t_loss, m_loss, abs(t_loss - m_loss), _rel(t_loss, m_loss),
                         diff, rel, worst, _rel(t_loss, c_loss))


#: Registered layers that draw random numbers in train mode (Dropout) or hold a dropout probability.
_RANDOM_LAYERS = ("Dropout", "MultiheadAttention")


def _torch_dropout_off(model):
    for module in model.modules():
        entry = registry.entry_for_torch(module)
        if entry is not None and (entry.stochastic or entry.name in _RANDOM_LAYERS):
            module.train(False)


def _ms_dropout_off(net):
    for _, cell in net.cells_and_names():
        entry = registry.entry_for_ms(cell)
        if entry is not None and (entry.stochastic or entry.name in _RANDOM_LAYERS):
            cell.set_train(False)


def _rel(reference, other):
    return abs(reference - other) / max(abs(reference), 1e-12)


def _perturbed_copy(model, seed):
    import copy

    import torch

    control = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in control.parameters():
            sign = torch.randint(0, 2, p.shape, generator=generator).to(p) * 2 - 1
            p.mul_(1 + CONTROL_PERTURBATION * sign)
    return control


def _param_difference(torch_model, ms_model):
    """Largest difference over every parameter and running statistic, in torch naming."""
    torch_params = torch_side.parameters_numpy(torch_model)
    ms_params, _ = mindspore_to_torch(ms_side.parameters_numpy(ms_model),
                                      OrderedDict((k, v.shape) for k, v in torch_params.items()), layers=layer_map(ms_model))
    worst_abs, worst_rel, worst_name = 0.0, 0.0, ""
    for name, want in torch_params.items():
        if name.endswith("num_batches_tracked"):
            continue
        delta = float(np.abs(want.astype(np.float64) - ms_params[name]).max())
        rel = delta / max(float(np.abs(want).max()), 1e-12)
        worst_abs = max(worst_abs, delta)
        if rel > worst_rel:
            worst_rel, worst_name = rel, name
    return worst_abs, worst_rel, worst_name

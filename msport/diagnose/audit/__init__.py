"""Audit a torch model and its MindSpore twin for porting mistakes, without training either.

Every check reads :mod:`msport.registry`, so every registered layer type is
covered the same way, and each produces records in torch naming with a
``check`` field:

``parameters``
    every torch parameter/buffer has a MindSpore twin of the same shape (names
    paired by :mod:`msport.diagnose.pairing`: a name map, the registry's rules,
    then structure).
``init``
    each MindSpore parameter's initial distribution against torch's default for
    its layer type (the registry's ``Param.init``: U(+-1/sqrt(fan_in)) for
    Conv/Linear, N(0, 1) for Embedding with its padding row zero, xavier for
    MultiheadAttention, U(+-1/sqrt(hidden)) for LSTM/GRU, 1/0 for norms), when
    the torch model itself follows that default; else the torch model's own
    values. KS test and std ratio. The case study's Normal(0.01)/zero-bias init and
    MindSpore's Normal(0.01) Embedding (100x torch's scale) are caught here.
one record per registered layer, ``check`` = its torch type (``Conv2d``, ``LayerNorm``...)
    paired with its MindSpore twin as layer-diff pairs them (:mod:`msport.diagnose.alignment`, from one
    eval pass of each model on the probe input): through the parameters, and parameter-free layers
    (pools, activations, dropout) by type and position between paired neighbours, never by path alone;
    * the entry's ``attrs``, read off both layers: eps, bias presence,
      Dropout ``p`` (read as ``p``: MindSpore's ``keep_prob`` attribute
      reads 0.5 whatever ``p`` is), GELU ``approximate``, padding_idx, groups...;
    * BatchNorm momentum, measured: one train-mode step on a probe batch
      shows which fraction of the batch mean enters the running mean
      (MindSpore 2.10 stores ``1 - momentum`` in ``.momentum``, so reading it
      is a trap);
    * a probe for every type with a ``probe_input``: both layers run on the
      same input (the layer's real input from one forward pass of the
      example inputs, else a random one) with MindSpore's weights copied into
      a copy of the torch layer. Padding shows here: a stride-2 conv or a
      MaxPool with ``pad_mode='same'`` pads bottom/right only and shifts every
      output against torch's symmetric padding while keeping the shape.
``weight_decay`` (with ``optimizer``)
    the decay each parameter really gets. MindSpore's optimizers, given a plain
    parameter list, skip every parameter whose name contains 'beta' or 'gamma'
    (``decay_filter`` in mindspore/nn/optim/optimizer.py); torch's SGD decays
    all. Read from the optimizer's ``decay_flags``/``group_weight_decay``.
``optimizer``, ``lr``, ``schedule`` (with ``optimizer`` and ``torch_optimizer``)
    the class's semantics (``nn.AdamWeightDecay`` for torch ``AdamW``: no bias
    correction, eps), every hyperparameter, each parameter's learning rate, and
    with ``torch_scheduler`` the first learning rates of the schedule
    (:mod:`msport.diagnose.audit.recipe`, read from :mod:`msport.optim.catalog`).
``data`` (with ``data``)
    the per-channel mean and std of a batch from each input pipeline (a torchvision transform and
    MindSpore ops, or two data sets) on the same images: see :mod:`msport.diagnose.audit.data`.
``loss`` (with ``loss_fn``)
    the MindSpore loss on the same inputs as torch's loss (default
    ``CrossEntropyLoss()``) and, for a registered twin, its configuration
    (reduction, label_smoothing, ignore_index...): ``nn.SoftmaxCrossEntropyWithLogits()``
    defaults to one-hot labels and per-sample losses (``sparse=False, reduction='none'``).

The models are left as they were (probes restore every value they touch).
"""

from collections import OrderedDict

import numpy as np

from msport import registry
from msport.diagnose import plots
from msport.diagnose.capture import as_inputs, describe_inputs
from msport.diagnose.pairing import pair_models
from msport.diagnose.report import Column, DiagnosisResult, Figure, flag_mark
from msport.progress import no_progress
from msport.diagnose.audit.init import init_records
from msport.diagnose.audit.layers import layer_records, paired_layers
from msport.diagnose.audit.loss import loss_record
from msport.diagnose.audit.optimizer import (weight_decay_records, ms_weight_decay_per_parameter,
                                            torch_weight_decay_per_parameter)
from msport.diagnose.audit.params import parameter_records
from msport.diagnose.audit.recipe import SCHEDULE_STEPS, recipe_records

DEFAULT_INPUT_SHAPE = (2, 3, 32, 32)
STAGES = 3  # the calls audit makes to ``progress``


def audit(torch_module, ms_cell, *, optimizer=None, torch_optimizer=None, loss_fn=None,
          torch_loss_fn=None, inputs=None, input_shape=DEFAULT_INPUT_SHAPE, check_init=True, name_map=None,
          seed=0, pairing=None, data=None, progress=no_progress, lr_schedule=None, torch_scheduler=None,
          schedule_steps=SCHEDULE_STEPS):
    """Run every check (see the module docstring); returns a :class:`DiagnosisResult`.

    ``inputs``: example inputs (a tensor, a tuple or a dict, any dtype; token
    ids included) for the probes; without them a random float batch of
    ``input_shape``. ``optimizer``: the MindSpore optimizer built the port's
    way (checks weight decay); ``torch_optimizer``: the torch one it should
    match (default: the MindSpore optimizer's nominal decay on every parameter,
    as torch's SGD does; given, the whole recipe is checked). ``lr_schedule``: the
    MindSpore side's schedule (an ``msport.optim.lr_scheduler`` object or a per-step
    list; default the optimizer's own list) checked over ``schedule_steps`` steps
    against ``torch_scheduler``. ``loss_fn``: the MindSpore loss cell;
    ``torch_loss_fn`` defaults to ``torch.nn.CrossEntropyLoss()``.
    ``data``: ``(torch pipeline, MindSpore pipeline, images)`` for the data check, images as
    :func:`msport.diagnose.compare_data.load_images` gives them. ``check_init=False`` for trained weights. ``name_map``: torch name ->
    MindSpore name (a dict, a callable or a file) for names neither the
    registry nor the structure pairs. ``progress(stage)`` is called as each of
    its :data:`STAGES` starts.
    """
    rng = np.random.default_rng(seed)
    pairing = pairing or pair_models(torch_module, ms_cell, name_map)
    torch_subs = OrderedDict(torch_module.named_modules())
    ms_subs = OrderedDict(ms_cell.cells_and_names())
    torch_layers = registry.torch_layers(torch_module)
    torch_state = OrderedDict((k, v.detach().cpu().numpy()) for k, v in torch_module.state_dict().items()
                              if k not in pairing.ignored)
    # copies: asnumpy() can alias the live buffer, which the BatchNorm probe below updates
    ms_params = OrderedDict((p.name, p) for p in ms_cell.get_parameters())
    ms_values = OrderedDict((t, np.array(ms_params[m].asnumpy(), copy=True)) for t, m in pairing.params.items())

    progress("parameters and initial distributions")
    records = parameter_records(torch_state, ms_values, pairing)
    if check_init:
        records += init_records(torch_state, ms_values, torch_layers, torch_subs)
    progress("probing every layer in both frameworks")
    if inputs is None:
        inputs = rng.standard_normal(input_shape).astype(np.float32)
    twins, layer_inputs, pairing_note = paired_layers(torch_module, ms_cell, pairing, inputs)
    records += layer_records(torch_layers, torch_subs, ms_subs, twins, pairing, layer_inputs, rng)
    progress("weight decay and loss")
    if optimizer is not None:
        records += weight_decay_records(optimizer, torch_optimizer, torch_module, pairing.ms_to_torch)
        if torch_optimizer is not None:
            records += recipe_records(optimizer, torch_optimizer, torch_module, pairing.ms_to_torch, lr_schedule,
                                      torch_scheduler, schedule_steps)
    if loss_fn is not None:
        records.append(loss_record(loss_fn, torch_loss_fn, rng))
    if data is not None:
        from msport.diagnose.audit.data import data_records

        records += data_records(*data)

    flagged = [r for r in records if r["flagged"]]
    summary = OrderedDict([
        ("flagged", len(flagged)),
        ("first_divergence", flagged[0]["name"] if flagged else None),
    ])
    for check in OrderedDict.fromkeys(r["check"] for r in records):
        of_check = [r for r in records if r["check"] == check]
        summary[f"{check}_checked"] = len(of_check)
        summary[f"{check}_flagged"] = sum(1 for r in of_check if r["flagged"])
    summary.update(pairing.summary())
    missing = [f"{n} ({e.name})" for n, e in torch_layers.items() if n not in twins]
    summary["layers_without_twin"] = missing
    notes = list(pairing.lines())
    args, kwargs = as_inputs(inputs)
    notes.append(f"probe input: {describe_inputs(args, kwargs)}")
    if pairing_note:
        notes.append(pairing_note)
    if missing:
        notes.append(f"not audited, no MindSpore layer found for: {', '.join(missing[:8])}"
                     + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else "")
                     + "; give a name map if the port has them under other names")
    if not check_init:
        notes.append("initial distributions not checked (trained weights)")
    if optimizer is None:
        notes.append("weight decay not checked: no optimizer given")
    if loss_fn is None:
        notes.append("loss not checked: no loss given")
    if data is None:
        notes.append("input pipelines not checked: no data pipelines given")
    return DiagnosisResult("audit", records, summary, notes)


# --- presentation -----------------------------------------------------------------------------

TABLE_COLUMNS = [
    Column("check", "check", left=True),
    Column("name", "name", left=True),
    Column("torch", "torch", left=True),
    Column("mindspore", "mindspore", left=True),
    Column("flag", "flagged", flag_mark),
]

PLOTS = [Figure("init_std.png", plots.init_std)]  # std ratio per layer type; constants counted, not drawn

#: --top N shows flagged records first, in check order.
SORT_KEY = "flagged"

__all__ = ["audit", "ms_weight_decay_per_parameter", "torch_weight_decay_per_parameter",
           "DEFAULT_INPUT_SHAPE", "TABLE_COLUMNS", "PLOTS", "SORT_KEY"]

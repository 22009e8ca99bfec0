"""What msport knows about each torch optimizer, in one table (as :mod:`msport.registry` is for layers).

Each :class:`OptimizerSpec` records, for one ``torch.optim`` class:

* the msport class (in :mod:`msport.optim`) that computes torch's step on MindSpore;
* torch's hyperparameters with torch's defaults (the msport class takes exactly these);
* which of them a schedule may change between steps (``tunable``: held in float64
  Parameters the compiled step reads) and which shape the compiled graph (``structural``:
  booleans and the like, fixed at construction);
* torch's per-parameter state names (``exp_avg``...), the ones msport keeps per group
  (``step``), and which hyperparameter switches a state on (``max_exp_avg_sq`` with ``amsgrad``);
* the MindSpore built-in that resembles it, and how that built-in differs.

:data:`MINDSPORE_BUILTINS` holds the other direction: for each ``mindspore.nn`` optimizer, which torch
class it stands in for, how to read its hyperparameters in torch's terms, and each difference a porter
meets. The optimizers, the audit (:mod:`msport.diagnose.audit`) and the state conversion
(:mod:`msport.optim.state`) all read these tables. Differences marked "measured" were measured here
(MindSpore 2.10, CPU); the rest are read from MindSpore's documented update formulas.
"""

from dataclasses import dataclass, field

from msport.errors import UserError

#: torch keyword arguments that choose torch's kernel, not the arithmetic: accepted and ignored.
IMPLEMENTATION_ONLY = ("foreach", "fused", "capturable", "differentiable")


@dataclass(frozen=True)
class OptimizerSpec:
    torch: str                          # torch.optim class name
    defaults: dict[str, object]         # torch's hyperparameters (lr first) and defaults
    tunable: tuple[str, ...]            # changeable between steps (lr, betas, momentum...)
    state: tuple[str, ...]              # torch's per-parameter tensors in state_dict()['state'][i]
    group_state: tuple[str, ...] = ("step",)  # torch's per-parameter scalars, kept per group in msport
    optional_state: dict[str, str] = field(default_factory=dict)  # state -> the flag that needs it
    mindspore: str = ""                 # the mindspore.nn built-in it resembles
    differences: tuple[str, ...] = ()   # how that built-in differs from torch

    @property
    def structural(self):
        return tuple(k for k in self.defaults if k not in self.tunable)

    def checked(self, given, where):
        """``defaults`` updated with ``given``; a key torch's class does not take is a one-line error."""
        unknown = sorted(set(given) - set(self.defaults) - set(IMPLEMENTATION_ONLY) - {"params"})
        if unknown:
            raise UserError(f"{where}: torch.optim.{self.torch} takes no {', '.join(unknown)}; its "
                            f"hyperparameters are {', '.join(self.defaults)}")
        values = dict(self.defaults)
        values.update((k, v) for k, v in given.items() if k in self.defaults)
        for key, value in values.items():
            _check_value(self.torch, key, value, isinstance(self.defaults[key], bool), where)
        return values


def _check_value(name, key, value, boolean, where):
    if key == "betas":
        ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(b, (int, float)) and 0 <= b < 1 for b in value)
        if not ok:
            raise UserError(f"{where}: {name} betas must be two numbers in [0, 1), got {value!r}")
    elif boolean:
        if not isinstance(value, bool):
            raise UserError(f"{where}: {name} {key} must be true or false, got {value!r}")
    elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise UserError(f"{where}: {name} {key} must be a number at least 0, got {value!r}")


OPTIMIZERS = {spec.torch: spec for spec in (
    OptimizerSpec(
        "SGD", {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "maximize": False},
        tunable=("lr", "momentum", "weight_decay"), state=("momentum_buffer",), group_state=(),
        mindspore="nn.Momentum",
        differences=(("an ungrouped parameter list skips weight decay on every parameter named beta/gamma "
                     "(measured: bn.gamma drifts 7e-4 in 3 steps); torch decays all"),
                     ("nn.Momentum has no dampening; nn.SGD's dampening also applies to the first step, where "
                     "torch's buffer starts as the plain gradient"),
                     ("nn.Momentum(use_nesterov=True) takes plain momentum steps on the CPU (measured, MindSpore "
                      "2.10: its ApplyMomentum kernel ignores use_nesterov)"))),
    OptimizerSpec(
        "Adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False, "maximize": False},
        tunable=("lr", "betas", "eps", "weight_decay"), state=("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
        optional_state={"max_exp_avg_sq": "amsgrad"}, mindspore="nn.Adam",
        differences=("an ungrouped parameter list skips weight decay on every parameter named beta/gamma",
                     "nn.Adam equals torch Adam otherwise (measured: 1.3e-7 after 5 steps with weight_decay 0.1)")),
    OptimizerSpec(
        "AdamW", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False, "maximize": False},
        tunable=("lr", "betas", "eps", "weight_decay"), state=("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
        optional_state={"max_exp_avg_sq": "amsgrad"}, mindspore="nn.AdamWeightDecay",
        differences=(("bias correction: nn.AdamWeightDecay has none (torch divides the moments by 1 - beta^t); "
                     "measured: weights 0.149 apart after 5 steps at lr 1e-2"),
                     "eps: nn.AdamWeightDecay defaults to 1e-6, torch AdamW to 1e-8",
                     "weight_decay: nn.AdamWeightDecay defaults to 0.0, torch AdamW to 0.01",
                     "an ungrouped parameter list skips weight decay on every parameter named beta/gamma")),
    OptimizerSpec(
        "RMSprop", {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False,
                        "maximize": False},
        tunable=("lr", "alpha", "eps", "weight_decay", "momentum"),
        state=("square_avg", "momentum_buffer", "grad_avg"), optional_state={"grad_avg": "centered"},
        mindspore="nn.RMSProp",
        differences=("eps: MindSpore adds it inside the square root, torch outside (sqrt(v) + eps)",
                     "decay (torch alpha) defaults to 0.9 in MindSpore, 0.99 in torch; eps 1e-10 against 1e-8",
                     "MindSpore folds the learning rate into the momentum buffer, so a schedule acts differently")),
    OptimizerSpec(
        "Adagrad", {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10,
                        "maximize": False},
        tunable=("lr", "lr_decay", "weight_decay", "eps"), state=("sum",),
        mindspore="nn.Adagrad",
        differences=("accum starts at 0.1 in MindSpore (torch initial_accumulator_value 0.0)",
                     "no eps in MindSpore's update (torch adds 1e-10 to the root)", "no lr_decay in MindSpore")),
    OptimizerSpec(
        "Adamax", {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "maximize": False},
        tunable=("lr", "betas", "eps", "weight_decay"), state=("exp_avg", "exp_inf"),
        mindspore="", differences=("no Adamax in mindspore.nn 2.10's CPU kernels to compare with",)),
    OptimizerSpec(
        "NAdam", {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "momentum_decay": 4e-3,
                      "decoupled_weight_decay": False, "maximize": False},
        tunable=("lr", "betas", "eps", "weight_decay", "momentum_decay"), state=("exp_avg", "exp_avg_sq"),
        group_state=("step", "mu_product"), mindspore="", differences=("mindspore.nn has no NAdam",)),
    OptimizerSpec(
        "RAdam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "decoupled_weight_decay": False,
                      "maximize": False},
        tunable=("lr", "betas", "eps", "weight_decay"), state=("exp_avg", "exp_avg_sq"),
        mindspore="", differences=("mindspore.nn has no RAdam",)),
)}


@dataclass(frozen=True)
class BuiltinSpec:
    """A ``mindspore.nn`` optimizer seen from torch: what it stands in for and how to read it."""

    name: str                        # class name in mindspore.nn
    stands_for: tuple[str, ...]      # torch classes a porter replaces with it
    # torch hyperparameter -> (attribute on the MindSpore optimizer, index into it or None)
    reads: dict[str, tuple[str, object]]
    # torch class -> semantic differences that no hyperparameter can remove; a (text, key) pair applies only
    # where torch's optimizer sets that hyperparameter (nesterov, dampening...)
    semantics: dict[str, tuple[str, ...]] = field(default_factory=dict)


MINDSPORE_BUILTINS = {spec.name: spec for spec in (
    BuiltinSpec("AdamWeightDecay", ("AdamW", "Adam"), {"betas": ("beta1", "beta2"), "eps": ("eps", None)},
                {"AdamW": (("no bias correction: the moments are not divided by 1 - beta^t, so early steps are "
                           "up to 1/(1 - beta1) = 10x off torch's (measured: weights 0.149 apart after 5 steps)"),
                           "eps sits outside the bias correction torch applies to sqrt(v)"),
                 "Adam": ("decoupled decay (torch Adam adds weight_decay * w to the gradient)",
                          "no bias correction")}),
    BuiltinSpec("Adam", ("Adam", "AdamW"), {"betas": ("beta1", "beta2"), "eps": ("eps", None)},
                {"AdamW": (("L2 decay: nn.Adam adds weight_decay * w to the gradient, torch AdamW shrinks the "
                           "weights by lr * weight_decay outside the moments"),)}),
    BuiltinSpec("Momentum", ("SGD",), {"momentum": ("momentum", None)},
                {"SGD": (("use_nesterov=True is ignored on the CPU (measured: plain momentum steps)", "nesterov"),)}),
    BuiltinSpec("SGD", ("SGD",), {"momentum": ("momentum", None), "dampening": ("dampening", None)},
                {"SGD": ((("nn.SGD applies dampening to the first step as well; torch starts the buffer at "
                           "the gradient"), "dampening"),)}),
    BuiltinSpec("RMSProp", ("RMSprop",), {"alpha": ("decay", None), "eps": ("epsilon", None),
                                          "momentum": ("momentum", None)},
                {"RMSprop": ("eps inside the square root (torch: sqrt(v) + eps)",
                             ("the learning rate is folded into the momentum buffer", "momentum"))}),
    BuiltinSpec("Adagrad", ("Adagrad",), {}, {"Adagrad": ("no eps in the denominator; accum starts at 0.1",)}),
)}


#: torch keyword -> the MindSpore built-ins' constructor keyword, where the two names differ beyond ``reads``.
_BUILTIN_KEYWORDS = {"lr": "learning_rate", "weight_decay": "weight_decay", "nesterov": "use_nesterov"}


def builtin_port(torch_name, kwargs):
    """``(mindspore.nn class name, keyword arguments)``: the built-in a porter reaches for in place of
    ``torch.optim.<torch_name>(**kwargs)``, given the same values under MindSpore's names. A keyword the
    built-in has no slot for (SGD's dampening on nn.Momentum) is dropped, and torch's defaults that the call
    left out stay MindSpore's (eps 1e-6 on nn.AdamWeightDecay): the port a careful person writes from
    MindSpore's docs, differences and all (``reproduce``'s naive arm)."""
    spec = spec_for(torch_name)
    if not spec.mindspore:
        raise UserError(f"torch.optim.{torch_name} has no MindSpore built-in look-alike ({spec.differences[0]}); "
                        f"use ms_recipe: msport")
    name = spec.mindspore.removeprefix("nn.")
    reads = MINDSPORE_BUILTINS[name].reads
    arguments = {}
    for key, value in kwargs.items():
        if key == "betas" and key in reads:
            arguments.update(zip(reads[key], value))
        elif key in reads:
            arguments[reads[key][0]] = value
        elif key in _BUILTIN_KEYWORDS and (key != "nesterov" or value):
            arguments[_BUILTIN_KEYWORDS[key]] = value
    return name, arguments


def spec_for(torch_name):
    try:
        return OPTIMIZERS[torch_name]
    except KeyError:
        raise UserError(f"msport.optim has no torch.optim.{torch_name}; known: {', '.join(OPTIMIZERS)}") from None

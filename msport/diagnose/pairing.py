"""Line up a torch model's names with its MindSpore port's: parameters and layers.

Three sources, tried in this order for every torch parameter, and each pair
remembers which one made it (``how``):

``"map"``
    the user's name map: a dict, a callable or a file (:func:`load_name_map`),
    from torch names to MindSpore names. A key may be a parameter name
    (``fc.weight``) or a layer name (``fc`` -> ``classifier``); a layer's
    parameters then follow its registry rules (``norm.weight`` ->
    ``ln.gamma``).
``"registry"``
    the conversion rules of :mod:`msport.registry` (through
    :func:`msport.convert.map_names` with each layer's type), accepted only when
    the name exists on the MindSpore side with the converted shape.
``"structure"``
    what is left is matched by structure: the parameterised layers of each side
    in module order, each reduced to (registered type, parameter shapes), are
    aligned by their longest common subsequence, and the parameters of two
    aligned layers pair up by the registry's rule (or, for layer types the
    registry does not know, by order). This lines up a port whose attributes
    were renamed (mindcv's ``down_sample`` for torchvision's ``downsample``).

Nothing is guessed silently: :meth:`Pairing.lines` says how many pairs each
source made and lists every structural pair, and whatever no source matched
is listed per side (``only_torch`` / ``only_ms``).

Layers (for layer-by-layer outputs) pair by the same name where both sides have
it, else through the prefixes the parameter pairs establish (``layer1.0.conv1``
-> ``stage1.0.conv1`` gives ``layer1`` -> ``stage1``), else through the map.
"""

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from msport import registry
from msport.convert import join_name, split_name
from msport.diagnose.name_map import NameMapError, load_name_map, map_function
from msport.diagnose.structure import pair_by_structure, param_owner, torch_layout
from msport.errors import few

HOW = ("map", "registry", "structure")


# --- the pairing ----------------------------------------------------------------------------

@dataclass
class Pairing:
    """What was matched, and how. Parameter names include buffers (running statistics)."""

    params: OrderedDict = field(default_factory=OrderedDict)   # torch name -> MindSpore name
    how: OrderedDict = field(default_factory=OrderedDict)      # torch name -> "map" | "registry" | "structure"
    layers: OrderedDict = field(default_factory=OrderedDict)   # torch layer -> MindSpore layer
    layer_how: OrderedDict = field(default_factory=OrderedDict)
    only_torch: list = field(default_factory=list)
    only_ms: list = field(default_factory=list)
    structural: list = field(default_factory=list)            # [(torch layer, ms layer, type)]
    ignored: list = field(default_factory=list)               # torch-only state, e.g. num_batches_tracked
    lacking_torch: list = field(default_factory=list)         # leftovers a paired twin layer does not hold
    lacking_ms: list = field(default_factory=list)            # (see _lacking): a subset of only_torch / only_ms

    @property
    def unresolved_torch(self):
        """Leftovers a name map would have to pair: ``only_torch`` without the ones a twin layer lacks."""
        return [n for n in self.only_torch if n not in self.lacking_torch]

    @property
    def unresolved_ms(self):
        return [n for n in self.only_ms if n not in self.lacking_ms]

    @property
    def ms_to_torch(self):
        return OrderedDict((m, t) for t, m in self.params.items())

    def ms_layer(self, torch_layer):
        return self.layers.get(torch_layer)

    def counts(self):
        return OrderedDict((h, sum(1 for v in self.how.values() if v == h)) for h in HOW)

    def lines(self):
        counts = self.counts()
        made = ", ".join(f"{n} by {h}" for h, n in counts.items() if n) or "none"
        out = [f"names: {len(self.params)} parameters paired ({made})"]
        for torch_layer, ms_layer, kind in self.structural:
            out.append(f"  by structure: {torch_layer or '(model)'} <-> {ms_layer or '(model)'} ({kind})")
        if self.only_torch:
            out.append(f"  no MindSpore twin ({len(self.only_torch)}): {few(self.only_torch, 8)}")
        if self.only_ms:
            out.append(f"  no torch twin ({len(self.only_ms)}): {few(self.only_ms, 8)}")
        lacking = self.lacking_torch + self.lacking_ms
        if lacking:
            out.append(f"  of these, {len(lacking)} are optional parameters (a bias) the paired twin layer does not "
                       f"hold: a configuration difference, not a name; the layers are compared: {few(lacking, 4)}")
        if self.unresolved_torch or self.unresolved_ms:
            out.append("  give a name map (--name-map FILE: lines 'torch_name mindspore_name') for these")
        return out

    def summary(self):
        return OrderedDict([("paired", len(self.params)), *((f"paired_by_{h}", n) for h, n in self.counts().items()),
                            ("unpaired_torch", list(self.only_torch)), ("unpaired_mindspore", list(self.only_ms)),
                            ("lacking_torch", list(self.lacking_torch)), ("lacking_mindspore", list(self.lacking_ms))])




def pair_names(torch_shapes, ms_shapes, torch_layers=None, ms_layers=None, name_map=None, torch_modules=()):
    """A :class:`Pairing` of ``{torch name: shape}`` with ``{MindSpore name: shape}``.

    ``torch_layers``/``ms_layers``: ``{layer name: registry entry}`` (:func:`msport.convert.layer_map`),
    when the models are at hand; without them layer types are inferred from names where possible.
    A name map's torch names must each be a parameter, a layer holding some, or one of ``torch_modules``:
    an entry that names nothing would be silently unused.
    """
    from msport.convert import ConversionError, TORCH_ONLY_SUFFIXES, map_names

    pairing = Pairing()
    torch_shapes = OrderedDict((k, tuple(v)) for k, v in torch_shapes.items())
    ms_shapes = OrderedDict((k, tuple(v)) for k, v in ms_shapes.items())
    for name in list(torch_shapes):
        if split_name(name)[1] in TORCH_ONLY_SUFFIXES:
            pairing.ignored.append(name)
            del torch_shapes[name]
    free_ms = OrderedDict(ms_shapes)

    def fits(torch_name, ms_name):
        if ms_name not in free_ms:
            return False
        layer, relative, entry = param_owner(ms_name, ms_layers)
        if entry is None and ms_layers is None:
            entry = param_owner(torch_name, torch_layers)[2]
        return torch_layout(entry, relative, free_ms[ms_name]) == torch_shapes[torch_name] \
            or free_ms[ms_name] == torch_shapes[torch_name]

    def take(torch_name, ms_name, how):
        pairing.params[torch_name] = ms_name
        pairing.how[torch_name] = how
        del free_ms[ms_name]

    # 1. the user's map: parameter names, or layer names whose parameters follow the registry's rules
    lookup = map_function(name_map)
    _check_map_names(lookup, list(torch_shapes) + pairing.ignored, torch_modules)
    if lookup is not None:
        for name in torch_shapes:
            target = lookup(name)
            if target is None:
                layer, suffix, entry = param_owner(name, torch_layers)
                prefix_layer = layer
                while prefix_layer and target is None:
                    mapped_layer = lookup(prefix_layer)
                    if mapped_layer is not None:
                        rest = layer[len(prefix_layer):]
                        rule = entry.param_for(suffix, "torch") if entry is not None else None
                        ms_suffix = rule.target(suffix, "torch") if rule is not None else suffix
                        target = join_name(mapped_layer + rest, ms_suffix)
                    prefix_layer = prefix_layer.rpartition(".")[0]
            if target is None:
                continue
            if target not in ms_shapes:
                raise NameMapError(f"the name map sends {name!r} to {target!r}, which the MindSpore model does not "
                                   f"have (close: {few(_similar(target, ms_shapes), 3)})")
            if fits(name, target):
                take(name, target, "map")

    # 2. the registry's conversion rules, checked against what the MindSpore side holds
    left = [n for n in torch_shapes if n not in pairing.params]
    for name, target in _registry_targets(left, torch_shapes, torch_layers, map_names, ConversionError).items():
        if target is not None and fits(name, target):
            take(name, target, "registry")

    # 3. structure: align the remaining parameterised layers of both sides
    left = [n for n in torch_shapes if n not in pairing.params]
    if left and free_ms:
        pair_by_structure(left, torch_shapes, free_ms, torch_layers, ms_layers, pairing, take)

    pairing.only_torch = [n for n in torch_shapes if n not in pairing.params]
    pairing.only_ms = list(free_ms)
    if torch_layers is not None and ms_layers is not None:
        pairing.lacking_torch = _lacking(pairing, pairing.only_torch, torch_layers, ms_layers, ms_shapes, "torch")
        pairing.lacking_ms = _lacking(pairing, pairing.only_ms, ms_layers, torch_layers, torch_shapes, "ms")
    return pairing


def _lacking(pairing, leftovers, layers, other_layers, other_names, side):
    """The ``leftovers`` of ``side`` that are an optional parameter (the registry's ``Param.optional``: a bias)
    of a layer whose other parameters all pair with one layer of the same type on the other side, which
    holds no such parameter: mindcv's ``nn.Conv2d`` without a bias where torchvision's has one. No name
    map can pair them; the layers still pair, and the audit reports the bias."""
    twins = {}
    for torch_name, ms_name in pairing.params.items():
        mine, other = (torch_name, ms_name) if side == "torch" else (ms_name, torch_name)
        twins.setdefault(param_owner(mine, layers)[0], set()).add(param_owner(other, other_layers)[0])
    out = []
    for name in leftovers:
        layer, relative, entry = param_owner(name, layers)
        twin = twins.get(layer, ())
        rule = entry.param_for(relative, side) if entry is not None else None
        if rule is None or not rule.optional or len(twin) != 1:
            continue
        other = next(iter(twin))
        other_entry = other_layers.get(other)
        if other_entry is not None and other_entry.name == entry.name \
                and join_name(other, rule.target(relative, side)) not in other_names:
            out.append(name)
    return out


def _check_map_names(lookup, torch_names, torch_modules):
    mapping = getattr(lookup, "__self__", None)  # a dict's own .get: a map given as data, whose keys can be checked
    if not isinstance(mapping, dict):
        return
    known = set(torch_modules)
    for name in torch_names:
        parts = name.split(".")
        known.update(".".join(parts[:cut]) for cut in range(1, len(parts) + 1))
    unknown = [k for k in mapping if k not in known]
    if unknown:
        raise NameMapError(f"the name map names {len(unknown)} torch parameters or layers the torch side does not "
                           f"have: {few(unknown, 3)}; each entry is 'torch_name mindspore_name'")


def _similar(name, names):
    tail = name.rpartition(".")[2]
    return [n for n in names if n.endswith("." + tail) or n == tail][:3]


def _registry_targets(names, shapes, layers, map_names, error_type):
    """``{torch name: MindSpore name or None}`` through the registry; a name no rule maps gets ``None``."""
    if not names:
        return OrderedDict()
    try:
        return map_names(names, "torch", layers=layers, shapes=shapes)
    except error_type:
        pass
    out = OrderedDict()
    for name in names:  # one by one, so one foreign name does not hide the rest
        try:
            out.update(map_names([name], "torch", layers=layers, shapes={name: shapes[name]}))
        except error_type:
            out[name] = None
    return out


# --- models ------------------------------------------------------------------------------------

def pair_models(torch_module, ms_cell, name_map=None):
    """:func:`pair_names` of a torch module and a MindSpore cell, with both layer maps, plus the layer pairs."""
    from msport.convert import layer_map

    torch_shapes = OrderedDict((k, tuple(v.shape)) for k, v in torch_module.state_dict().items())
    ms_shapes = OrderedDict((p.name, tuple(p.shape)) for p in ms_cell.get_parameters())
    torch_layers, ms_layers = layer_map(torch_module), layer_map(ms_cell)
    torch_names = [n for n, _ in torch_module.named_modules() if n]
    pairing = pair_names(torch_shapes, ms_shapes, torch_layers, ms_layers, name_map, torch_names)
    ms_names = [n for n, _ in ms_cell.cells_and_names() if n]
    paths = OrderedDict((name.rpartition(".")[0], path.rpartition(".")[0])
                        for name, path in registry.ms_parameter_paths(ms_cell).items())
    pair_layers(pairing, torch_names, ms_names, torch_layers, ms_layers, name_map, paths)
    return pairing


def pair_layers(pairing, torch_names, ms_names, torch_layers=None, ms_layers=None, name_map=None, ms_paths=None):
    """Fill ``pairing.layers``: by the user's map, by the parameter pairs' layers and prefixes, by equal name.
    ``ms_paths``: a MindSpore layer as its parameters are named -> its cell's path, where they differ
    (:func:`msport.registry.ms_parameter_paths`); the layers are named by path."""
    ms_set = set(ms_names)
    ms_paths = ms_paths or {}
    lookup = map_function(name_map)
    prefixes = OrderedDict()
    for torch_name, ms_name in pairing.params.items():
        t_layer, m_layer = split_name(torch_name)[0], split_name(ms_name)[0]
        # walk up while the trailing components agree: layer1.0.conv1 / stage1.0.conv1 -> layer1 / stage1
        t_parts, m_parts = t_layer.split(".") if t_layer else [], m_layer.split(".") if m_layer else []
        prefixes.setdefault(t_layer, m_layer)
        while t_parts and m_parts and t_parts[-1] == m_parts[-1]:
            t_parts, m_parts = t_parts[:-1], m_parts[:-1]
            prefixes.setdefault(".".join(t_parts), ".".join(m_parts))
        prefixes.setdefault(".".join(t_parts), ".".join(m_parts))

    def translate(name):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            head = ".".join(parts[:cut])
            if head in prefixes:  # the deepest known prefix decides, renamed or not
                tail = ".".join(parts[cut:])
                return join_name(prefixes[head], tail) if tail else prefixes[head]
        return None

    for name in torch_names:
        mapped = lookup(name) if lookup is not None else None
        how = "map"
        if mapped is None:
            mapped, how = translate(name), "parameters"
            mapped = mapped if mapped is None or mapped in ms_set else ms_paths.get(mapped, mapped)
        if (mapped is None or mapped not in ms_set) and name in ms_set:
            mapped, how = name, "name"
        if mapped is not None and mapped in ms_set:
            pairing.layers[name] = mapped
            pairing.layer_how[name] = how
    return pairing


def copy_torch_weights(torch_module, ms_cell, pairing=None, name_map=None):
    """Set every paired MindSpore parameter from its torch twin (reshaped to MindSpore's layout); returns
    the pairing. Parameters without a twin keep their values and are listed by ``pairing.lines()``."""
    from msport._mindspore import ms

    pairing = pairing or pair_models(torch_module, ms_cell, name_map)
    state = torch_module.state_dict()
    params = {p.name: p for p in ms_cell.get_parameters()}
    for torch_name, ms_name in pairing.params.items():
        param = params[ms_name]
        value = state[torch_name].detach().cpu().numpy().reshape(tuple(param.shape))
        param.set_data(ms.Tensor(np.array(value)))
    return pairing


__all__ = ["HOW", "NameMapError", "Pairing", "copy_torch_weights", "load_name_map", "pair_layers", "pair_models",
           "pair_names"]

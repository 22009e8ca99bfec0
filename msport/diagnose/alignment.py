"""Pair the layer calls of a torch run with those of a MindSpore run by what they compute, not by path.

Two ports of one architecture name their modules differently and nest them
differently (torchvision's ``features.1.conv`` is a Sequential of conv, BN and
ReLU6; mindcv's module at that path holds something else). Comparing outputs
by path then compares different computations and cries wolf; leaving a
parameter-free layer unpaired (a stem max-pool named ``maxpool`` and
``max_pool``) blames the next layer that has parameters. So calls pair in three
ways, each justified by something both sides share:

``"parameters"``
    a leaf layer (no submodules, or a registered layer type) whose parameters
    all pair (:mod:`msport.diagnose.pairing`) with all of one leaf's on the
    other side, of the same registry type where both types are known (an
    optional parameter one of the two lacks, a bias, is a setting the audit
    reports, not a reason to leave the layers unpaired);
``"position"``
    a parameter-free leaf (pool, activation, dropout, flatten, identity) by
    its type (registry entry, else class name) and its place between two
    paired neighbours: the leaf calls of each side, in forward order, are cut
    at the parameter pairs that keep their order, and each gap's
    parameter-free calls are aligned by type (longest common subsequence);
``"contents"``
    a container call only when the leaf calls that ran inside it are all
    paired, with exactly the leaf calls inside one container call of the
    other side, and every parameter under either pairs with one under the other.
    Where several nested containers of the other side ran exactly those
    layers, the one whose output is closest is the twin (see ``_distance``).
``"contents, outputs agree"``
    as ``"contents"`` where either side also ran parameter-free leaves that pair
    with nothing, made only where the two outputs agree in this run (values mode).

``"map"``: a layer the user's name map names. Calls of one module are told
apart by the capture's call spans (``name#2``), so a shared cell pairs call by
call. What pairs with nothing is listed per side (``unpaired_*``): it may be
where the ports differ, and the verdict names it as a suspect.
"""

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace

from msport import registry
from msport.convert import layer_map
from msport.diagnose.structure import lcs
from msport.tolerances import norm_rel

LOOSE = "contents, outputs agree"
EMPTY_IS_IDENTITY = ("Sequential", "SequentialCell", "ModuleList", "CellList")
HOW = ("parameters", "position", "contents", LOOSE, "map")


@dataclass
class Alignment:
    """``pairs``: torch call -> MindSpore call, in torch's forward order; ``how``: torch call -> one of
    :data:`HOW`; ``leaves_*``: each side's leaf calls (forward order); ``unpaired_*``: leaf calls without
    a twin."""

    pairs: OrderedDict = field(default_factory=OrderedDict)
    how: OrderedDict = field(default_factory=OrderedDict)
    leaves_torch: list = field(default_factory=list)
    leaves_ms: list = field(default_factory=list)
    unpaired_torch: list = field(default_factory=list)
    unpaired_ms: list = field(default_factory=list)
    types: dict = field(default_factory=dict)   # call (either side, prefixed "torch:"/"ms:") -> type name

    def counts(self):
        return OrderedDict((h, sum(1 for v in self.how.values() if v == h)) for h in HOW)

    def line(self):
        made = ", ".join(f"{n} by {h}" for h, n in self.counts().items() if n) or "none"
        return (f"layer calls: {len(self.pairs)} paired ({made}); leaf calls without a twin: "
                f"{len(self.unpaired_torch)} torch, {len(self.unpaired_ms)} MindSpore")


class _Side:
    """One model's modules as alignment sees them: leaves, their types, parameters and calls."""

    def __init__(self, modules, layers, params, spans, side):
        self.side = side
        self.modules = modules                     # name -> module/cell (root excluded)
        self.layers = layers                       # name -> registry entry
        inside = [n for n in modules if any(n.startswith(r + ".") for r in layers)]
        self.hidden = set(inside)                  # what a registered layer computes inside itself
        self.leaves = {n for n in modules if n not in self.hidden
                       and (n in layers or not any(c.startswith(n + ".") for c in modules))}
        self.params = params                       # parameter names, in model order
        self.spans = OrderedDict((c, s) for c, s in spans.items() if _base(c) not in self.hidden)
        self.leaf_calls = sorted((c for c in self.spans if _base(c) in self.leaves), key=lambda c: self.spans[c][0])
        self.holder, self.holding = {}, {}         # parameter -> the leaf that holds it, and back
        for name in params:
            prefix = name.rpartition(".")[0]
            while prefix and prefix not in self.leaves:
                prefix = prefix.rpartition(".")[0]
            self.holder[name] = prefix or None
            self.holding.setdefault(prefix or None, []).append(name)

    def type_of(self, name):
        entry = self.layers.get(name)
        if entry is not None:
            return entry.name
        kind = type(self.modules[name]).__name__
        # an empty container passes its input on: torch's Sequential() shortcut is MindSpore's SequentialCell()
        return "Identity" if kind in EMPTY_IS_IDENTITY and name in self.leaves else kind

    def held(self, leaf):
        return self.holding.get(leaf, [])

    def under(self, name):
        return [p for p in self.params if p.startswith(name + ".")]

    def inside(self, call):
        start, end = self.spans[call]
        return [c for c in self.leaf_calls if start < self.spans[c][0] and self.spans[c][1] < end]

    def calls_of(self, name):
        return [c for c in self.spans if _base(c) == name]


def _base(call):
    return call.partition("#")[0]


def align(torch_module, ms_cell, pairing, torch_capture, ms_capture, loose_rtol=None):
    """An :class:`Alignment` of the calls the two captures recorded (they need ``spans``); ``loose_rtol``:
    see :func:`_pair_containers`."""
    t = _Side(OrderedDict((n, m) for n, m in torch_module.named_modules() if n), layer_map(torch_module),
              [n for n in torch_module.state_dict() if n not in pairing.ignored], torch_capture.spans, "torch")
    # cells are called by path; a parameter's name can differ from its path (a CellList's): pair by paths
    paths = registry.ms_parameter_paths(ms_cell)
    m = _Side(OrderedDict((n, c) for n, c in ms_cell.cells_and_names() if n), registry.ms_layers(ms_cell),
              list(paths.values()), ms_capture.spans, "ms")
    by_path = SimpleNamespace(params={k: paths.get(v, v) for k, v in pairing.params.items()},
                              lacking_torch=pairing.lacking_torch,
                              lacking_ms=[paths.get(n, n) for n in pairing.lacking_ms])
    pairs, how = OrderedDict(), OrderedDict()

    def pair_calls(t_name, m_name, kind):
        t_calls, m_calls = t.calls_of(t_name), m.calls_of(m_name)
        if len(t_calls) == len(m_calls):
            for a, b in zip(t_calls, m_calls):
                if a not in pairs and b not in pairs.values():
                    pairs[a], how[a] = b, kind

    for t_name, how_made in pairing.layer_how.items():
        if how_made == "map" and t_name in t.modules and pairing.layers[t_name] in m.modules:
            pair_calls(t_name, pairing.layers[t_name], "map")
    for t_leaf, m_leaf in _leaves_by_parameters(t, m, by_path):
        pair_calls(t_leaf, m_leaf, "parameters")
    _pair_by_position(t, m, pairs, how)
    _pair_containers(t, m, by_path, pairs, how, (torch_capture.outputs, ms_capture.outputs), loose_rtol)

    result = Alignment(leaves_torch=list(t.leaf_calls), leaves_ms=list(m.leaf_calls))
    for call in sorted(pairs, key=lambda c: t.spans[c][1]):
        result.pairs[call], result.how[call] = pairs[call], how[call]
    paired_ms = set(pairs.values())
    result.unpaired_torch = [c for c in t.leaf_calls if c not in pairs]
    result.unpaired_ms = [c for c in m.leaf_calls if c not in paired_ms]
    result.types.update((f"torch:{c}", t.type_of(_base(c))) for c in t.spans)
    result.types.update((f"ms:{c}", m.type_of(_base(c))) for c in m.spans)
    return result


def layer_twins(alignment, pairing):
    """``{torch layer: MindSpore layer}`` as every tool pairs layers (the audit reads this): each torch module's
    first call's twin in the run the alignment was made from; a module that run did not pair keeps the layer
    its own parameters pair with (:attr:`Pairing.layers` made by the parameters or the name map), never one
    that only shares its path (mindcv's ``features.1.conv`` holds other layers than torchvision's)."""
    twins = OrderedDict()
    for t_call, m_call in alignment.pairs.items():
        twins.setdefault(_base(t_call), _base(m_call))
    for name, ms_name in pairing.layers.items():
        how = pairing.layer_how.get(name)
        holds = any(p.startswith(name + ".") for p in pairing.params)
        if name not in twins and (how == "map" or (how == "parameters" and holds)):
            twins[name] = ms_name
    return twins


def _leaves_by_parameters(t, m, pairing):
    """``(torch leaf, MindSpore leaf)`` whose parameters pair all with all, types agreeing where known."""
    out = []
    lacking_t, lacking_m = set(pairing.lacking_torch), set(pairing.lacking_ms)
    for leaf in sorted(t.leaves):
        mine = [p for p in t.held(leaf) if p not in lacking_t]  # a bias the twin lacks: a setting, not a name
        images = [pairing.params.get(p) for p in mine]
        if not mine or None in images:
            continue
        holders = {m.holder.get(i) for i in images}
        if len(holders) != 1 or None in holders:
            continue
        twin = holders.pop()
        if set(m.held(twin)) - lacking_m != set(images):
            continue
        known = leaf in t.layers and twin in m.layers
        if known and t.layers[leaf].name != m.layers[twin].name:
            continue
        out.append((leaf, twin))
    return out


def _pair_by_position(t, m, pairs, how):
    """Parameter-free leaf calls, by type, in the gaps between parameter pairs that keep their order."""
    t_index = {c: i for i, c in enumerate(t.leaf_calls)}
    m_index = {c: i for i, c in enumerate(m.leaf_calls)}
    anchors = sorted((t_index[a], m_index[b]) for a, b in pairs.items() if a in t_index and b in m_index)
    chain = _increasing(anchors)
    bounds = [(-1, -1)] + chain + [(len(t.leaf_calls), len(m.leaf_calls))]
    taken = set(pairs.values())
    for (t0, m0), (t1, m1) in zip(bounds, bounds[1:]):
        gap_t = [c for c in t.leaf_calls[t0 + 1:t1] if c not in pairs and not t.held(_base(c))]
        gap_m = [c for c in m.leaf_calls[m0 + 1:m1] if c not in taken and not m.held(_base(c))]
        kinds_t = [t.type_of(_base(c)) for c in gap_t]
        kinds_m = [m.type_of(_base(c)) for c in gap_m]
        for i, j in lcs(kinds_t, kinds_m, lambda a, b: a == b):
            pairs[gap_t[i]], how[gap_t[i]] = gap_m[j], "position"
            taken.add(gap_m[j])


def _increasing(points):
    """The longest chain of ``(i, j)`` (sorted by i) with j increasing too."""
    best, back = [], []
    for k, (_, j) in enumerate(points):
        length, prev = 1, -1
        for q in range(k):
            if points[q][1] < j and best[q] + 1 > length:
                length, prev = best[q] + 1, q
        best.append(length)
        back.append(prev)
    if not points:
        return []
    k = max(range(len(points)), key=best.__getitem__)
    chain = []
    while k >= 0:
        chain.append(points[k])
        k = back[k]
    return chain[::-1]


def _pair_containers(t, m, pairing, pairs, how, outputs, loose_rtol):
    """A container call pairs with the other side's call that ran exactly the twins of its leaf calls.

    Where either also ran parameter-free leaves that pair with nothing (msport's zoo has ReLU cells
    where torch calls ``F.relu``), the two may or may not compute the same (the extra ReLU can sit inside
    one container and outside the other), so that pair is made only where the outputs agree within
    ``loose_rtol`` in this run: it then marks where the outputs still match, and is never a culprit.
    """
    paired_ms = set(pairs.values())

    def split(side, call, paired):
        inside = side.inside(call)
        return (frozenset(c for c in inside if c in paired),
                all(c in paired or not side.held(_base(c)) for c in inside),
                all(c in paired for c in inside))

    ms_containers = OrderedDict()
    for call in m.spans:
        if _base(call) not in m.leaves:
            held, free_only, exact = split(m, call, paired_ms)
            if held and free_only:
                ms_containers.setdefault(held, []).append((call, exact))
    for call in t.spans:
        name = _base(call)
        if name in t.leaves or call in pairs:
            continue
        held, free_only, exact = split(t, call, pairs)
        if not held or not free_only:
            continue
        twins = ms_containers.get(frozenset(pairs[c] for c in held), [])
        candidates = [(c, exact and ms_exact) for c, ms_exact in twins
                      if _params_pair(t.under(name), m.under(_base(c)), pairing)]
        if not candidates:
            continue
        distance = {c: _distance(outputs[0].get(call), outputs[1].get(c)) for c, _ in candidates}
        twin, strict = min(candidates, key=lambda c: (not c[1], distance[c[0]]))
        if strict or (loose_rtol is not None and distance[twin] <= loose_rtol):
            pairs[call], how[call] = twin, "contents" if strict else LOOSE


def _distance(a, b):
    """How far apart two outputs are: nested containers that ran the same layers (mindcv's residual block and
    the Sequential inside it, which lacks the residual sum) differ only by functional ops, and the twin of a
    torch container is the one that computes what it computes; a shape mismatch is farthest."""
    if a is None or b is None or a.shape != b.shape:
        return math.inf
    return norm_rel(a, b)


def _params_pair(torch_params, ms_params, pairing):
    images = [pairing.params.get(p) for p in torch_params if p not in pairing.lacking_torch]
    return None not in images and set(images) == set(ms_params) - set(pairing.lacking_ms)


__all__ = ["Alignment", "HOW", "align", "layer_twins"]

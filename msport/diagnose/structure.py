"""Pass 3 of :func:`msport.diagnose.pairing.pair_names`: the layers left on each side, matched by structure.

Each side's parameterised layers, in module order, are reduced to (registry type, parameter shapes in
torch's layout) and aligned by longest common subsequence, blocks first (see :func:`pair_by_structure`).
This lines up a port whose attributes were renamed (mindcv's ``down_sample`` for torchvision's
``downsample``). Its own module because the pairing's three sources together outgrew one file;
:func:`lcs` also aligns parameter-free layer calls in :mod:`msport.diagnose.alignment`.
"""

from collections import OrderedDict

from msport import registry
from msport.convert import owner, split_name


def param_owner(name, layers):
    """``(layer, relative name, entry)`` of a parameter: the deepest registered layer that holds it
    (``bn.bn2d.gamma`` belongs to the BatchNorm ``bn`` even where ``bn2d`` is a cell of its own), found
    as conversion finds it (:func:`msport.convert.owner`); without a registered one, its own module."""
    if layers is None:
        return (*split_name(name), None)
    layer, suffix = owner(name, layers)
    return layer, suffix, layers.get(layer)


def torch_layout(entry, relative, ms_shape, side="ms"):
    if entry is None:
        return tuple(ms_shape)
    rule = entry.param_for(relative, side)
    return registry.torch_layout_shape(rule, ms_shape) if rule is not None else tuple(ms_shape)


def _groups(names, shapes, layers, side):
    """``[(layer, entry name or None, ((relative, torch-layout shape), ...))]`` in first-appearance order."""
    groups = OrderedDict()
    for name in names:
        layer, relative, entry = param_owner(name, layers)
        groups.setdefault(layer, [entry, []])[1].append((relative, name))
    out = []
    for layer, (entry, members) in groups.items():
        if entry is None and layers is None:  # no model: the names tell a BatchNorm, a LayerNorm... where they can
            entry = registry.infer_from_names({rel: shapes[full] for rel, full in members}, side)
        signature = tuple(sorted(_signature_shape(entry, rel, shapes[full], side) for rel, full in members))
        out.append((layer, entry.name if entry is not None else None, signature, members, entry))
    return out


def _signature_shape(entry, relative, shape, side):
    """A parameter's shape as structure compares it: torch's layout for a registered layer; for anything
    else without its axes of length 1, which ports drop or add freely (torchvision's ConvNeXt
    ``layer_scale`` is (C, 1, 1), mindcv's ``gamma_`` is (C,)); conversion reshapes between them."""
    if entry is not None:
        return torch_layout(entry, relative, shape, side)
    return _squeezed(shape)


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def pair_by_structure(left, torch_shapes, free_ms, torch_layers, ms_layers, pairing, take):
    """Align layers by (type, shapes) in module order, in three passes:

    1. blocks (runs of layers under one parent module) whose whole sequence of layers agrees, so a BatchNorm
       is not lined up with the BatchNorm of another branch;
    2. single layers, in each gap the aligned ones leave, until nothing more pairs;
    3. blocks still left whose sequence agrees with exactly one left on the other side under a parent the
       pairs so far line up: a block whose two branches are declared in the opposite order (``branch1`` /
       ``branch2`` against ``branch_main`` / ``branch_proj``) cannot pair in order.
    """
    torch_groups = _groups(left, torch_shapes, torch_layers, "torch")
    ms_groups = _groups(list(free_ms), free_ms, ms_layers, "ms")

    def same(a, b):
        kinds_known = a[1] is not None and b[1] is not None
        return a[2] == b[2] and (a[1] == b[1] if kinds_known else True)

    def same_block(a, b):
        return len(a[1]) == len(b[1]) and all(same(torch_groups[i], ms_groups[j]) for i, j in zip(a[1], b[1]))

    t_blocks, m_blocks = _blocks(torch_groups), _blocks(ms_groups)
    matched = [(i, j) for bi, bj in lcs(t_blocks, m_blocks, same_block)
               for i, j in zip(t_blocks[bi][1], m_blocks[bj][1])]
    new = True
    while new:
        new = []
        bounds = [(-1, -1)] + matched + [(len(torch_groups), len(ms_groups))]
        for (t0, m0), (t1, m1) in zip(bounds, bounds[1:]):
            if t1 - t0 > 1 and m1 - m0 > 1:
                gap_t, gap_m = torch_groups[t0 + 1:t1], ms_groups[m0 + 1:m1]
                new += [(t0 + 1 + i, m0 + 1 + j) for i, j in lcs(gap_t, gap_m, same)]
        matched = sorted(matched + new)
    matched += _swapped_blocks(t_blocks, m_blocks, matched, torch_groups, ms_groups, same_block)
    for ti, mi in matched:
        t_layer, kind, _, t_members, t_entry = torch_groups[ti]
        m_layer, _, _, m_members, m_entry = ms_groups[mi]
        m_by_rel = OrderedDict(m_members)
        pairs = []
        for rel, full in t_members:
            rule = t_entry.param_for(rel, "torch") if t_entry is not None else None
            target_rel = rule.target(rel, "torch") if rule is not None else None
            if target_rel in m_by_rel:
                pairs.append((full, m_by_rel.pop(target_rel)))
        rest_t = [full for rel, full in t_members if full not in dict(pairs)]
        rest_m = list(m_by_rel.values())
        for full in rest_t:  # an unregistered type: by order, shapes equal (up to axes of length 1)
            match = next((m for m in rest_m if _squeezed(free_ms[m]) == _squeezed(torch_shapes[full])), None)
            if match is not None:
                rest_m.remove(match)
                pairs.append((full, match))
        if len(pairs) == len(t_members):
            for full, ms_name in pairs:
                take(full, ms_name, "structure")
            pairing.structural.append((t_layer, m_layer, kind or "unregistered"))


def _blocks(groups):
    """``[(parent module, [group indices])]``: runs of consecutive groups under one parent."""
    out = []
    for index, group in enumerate(groups):
        parent = group[0].rpartition(".")[0]
        if out and out[-1][0] == parent:
            out[-1][1].append(index)
        else:
            out.append((parent, [index]))
    return out


def _ancestors(name):
    parts = name.split(".") if name else []
    return [".".join(parts[:k]) for k in range(len(parts), -1, -1)]


def _swapped_blocks(t_blocks, m_blocks, matched, torch_groups, ms_groups, same_block):
    """Pass 3 of :func:`_pair_by_structure`: group index pairs of untouched blocks that agree one to one."""
    done_t, done_m = {i for i, _ in matched}, {j for _, j in matched}
    lined_up = set()  # (torch parent, MindSpore parent) at the same height above a pair made so far
    for i, j in matched:
        lined_up.update(zip(_ancestors(torch_groups[i][0]), _ancestors(ms_groups[j][0])))
    free_t = [b for b in t_blocks if not done_t & set(b[1])]
    free_m = [b for b in m_blocks if not done_m & set(b[1])]
    out = []
    def above(block):
        return block[0].rpartition(".")[0]

    for block in free_t:
        twins = [b for b in free_m if (above(block), above(b)) in lined_up and same_block(block, b)]
        rivals = [b for b in free_t if above(b) == above(block) and twins and same_block(b, twins[0])]
        if len(twins) == 1 and len(rivals) == 1:
            out += list(zip(block[1], twins[0][1]))
            free_m.remove(twins[0])
    return out


def lcs(a, b, same):
    """Index pairs of a longest common subsequence of ``a`` and ``b`` under ``same``."""
    n, m = len(a), len(b)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if same(a[i], b[j]) else max(table[i + 1][j], table[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if same(a[i], b[j]) and table[i][j] == table[i + 1][j + 1] + 1:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] != table[i][j + 1]:
            i, j = (i + 1, j) if table[i + 1][j] > table[i][j + 1] else (i, j + 1)
        elif not any(same(a[k], b[j]) for k in range(i + 1, n)):
            j += 1  # a tie: skip what pairs with nothing ahead, so a[i] can still pair with what follows b[j]
        else:
            i += 1
    return pairs


__all__ = ["lcs", "pair_by_structure", "param_owner", "torch_layout"]

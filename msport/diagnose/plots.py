"""Figures that need more than one line per record: drawn per group, each answering one question.

``init_std``: does each parameter start at PyTorch's scale? (audit)
``distribution``: do the two checkpoints' tensors have the same spread? (compare-ckpt)
``difference``: how far apart are they, tensor by tensor? (compare-ckpt)

Each takes the command's records and a path, draws with matplotlib's Agg
backend, and returns False (writing nothing) when there is nothing to draw.
"""

import math
from collections import OrderedDict

from msport.tolerances import INIT_STD_RATIO_RANGE

MAX_LABELLED = 70  # more parameters than this in one panel: label every n-th, and every flagged one


def init_std(records, path):
    """audit's init_std.png: MindSpore's initial std / the reference std, one panel per layer type.

    Constant parameters (BatchNorm's 1 and 0, reference std 0) have no ratio;
    they are checked exactly and named in the table, and only counted here.
    """
    rows = [r for r in records if r.get("check") == "init"]
    drawn = [r for r in rows if r.get("expected_std")]
    if not drawn:
        return False
    plt = _pyplot()
    groups = OrderedDict()
    for r in drawn:
        groups.setdefault(_parameter_kind(r), []).append(r)
    low, high = INIT_STD_RATIO_RANGE
    ratios = [r["ms_std"] / r["expected_std"] for r in drawn]
    floor = min([v for v in ratios if v > 0] + [low]) / 3  # where an all-zero parameter is drawn
    ceiling = max(ratios + [high]) * 2
    fig, axes = plt.subplots(1, len(groups), figsize=(min(max(10.0, 0.16 * len(drawn) + 2), 30.0), 5.0),
                             sharey=True, squeeze=False,
                             gridspec_kw={"width_ratios": [max(len(g), 5) for g in groups.values()]})
    for ax, (kind, group) in zip(axes[0], groups.items()):
        xs = range(len(group))
        for x, r in zip(xs, group):
            ratio = r["ms_std"] / r["expected_std"]
            color = "red" if r.get("flagged") else "tab:green"
            if ratio > 0:
                ax.plot(x, ratio, "o", color=color, markersize=4)
            else:
                ax.plot(x, floor, "v", color=color, markersize=6)
        ax.axhspan(low, high, color="tab:green", alpha=0.15)
        ax.axhline(1.0, color="black", linewidth=0.8)
        if any(r["ms_std"] == 0 for r in group):
            ax.axhline(floor, color="gray", linewidth=0.5, linestyle=":")
        _log_axis(ax, floor / 1.5, ceiling)
        ax.set_xlim(-0.7, len(group) - 0.3)
        flagged = sum(1 for r in group if r.get("flagged"))
        ax.set_title(f"{kind}\n{len(group)}, {flagged} flagged", fontsize=8)
        _name_ticks(ax, group)
    axes[0][0].set_ylabel("initial std: MindSpore / reference (log)")
    constants = [r for r in rows if not r.get("expected_std")]
    bad_constants = [r["name"] for r in constants if r.get("flagged")]
    fig.suptitle("Does each parameter start at PyTorch's scale? 1 = same std, "
                 f"green band [{low:g}, {high:g}] passes, \u25bc = all zeros.\nRed = flagged: std outside the band, "
                 "or a KS test rejects the reference's shape (normal where PyTorch draws uniform)", fontsize=9)
    note = (f"{len(constants)} constant parameters (BatchNorm's 1 and 0) are checked exactly and not drawn"
            + (f"; flagged: {', '.join(bad_constants[:6])}{' ...' if len(bad_constants) > 6 else ''}"
               if bad_constants else "; none flagged"))
    fig.text(0.01, 0.01, note, fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 0.93))
    _save(fig, path)
    return True


def distribution(records, path):
    """compare-ckpt's distribution.png: each tensor's std in A and in B, one panel per kind of tensor.

    Weights, BatchNorm's scale, shift and running statistics, and biases live on
    different scales; drawn on one line they zig-zag and hide the comparison.
    """
    return _per_tensor_kind(records, path, (("a_std", "A", "-"), ("b_std", "B", "--")), "std",
                            "Do A and B have the same spread, tensor by tensor? (std of each tensor's values)",
                            "constant in both (std 0)")


def difference(records, path):
    """compare-ckpt's difference.png: ||A-B|| / ||A|| per tensor, one panel per kind of tensor."""
    return _per_tensor_kind(records, path, (("rel_diff", "||A-B|| / ||A||", "-"),), "relative difference",
                            "How far apart are A and B, tensor by tensor? (||A-B|| / ||A||; 0 = equal)",
                            "equal in A and B")


def _per_tensor_kind(records, path, series, ylabel, title, not_drawn_means):
    rows = [r for r in records if r.get("max_abs_diff") is not None]
    keys = [key for key, _, _ in series]
    batchnorms = {r["name"].rpartition(".")[0] for r in rows if r["name"].endswith(".running_mean")}
    groups = OrderedDict((kind, []) for kind in TENSOR_KINDS)
    for r in rows:
        groups[_tensor_kind(r, batchnorms)].append(r)
    groups = OrderedDict((k, v) for k, v in groups.items() if v)
    values = {k: [v for r in group for v in map(_positive, (r.get(key) for key in keys)) if v == v]
              for k, group in groups.items()}
    skipped = [f"{kind} ({len(group)})" for kind, group in groups.items() if not values[kind]]
    groups = OrderedDict((k, v) for k, v in groups.items() if values[k])
    if not groups:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(len(groups), 1, figsize=(min(max(8.0, 0.09 * max(map(len, groups.values()))), 24.0),
                                                      2.9 * len(groups)), squeeze=False)
    for ax, (kind, group) in zip(axes[:, 0], groups.items()):
        xs = range(len(group))
        for key, label, style in series:
            ax.plot(xs, [_positive(r.get(key)) for r in group], style, marker=".", markersize=4, linewidth=1,
                    label=label)
        flagged = [x for x, r in zip(xs, group) if r.get("flagged")]
        for x in flagged:
            ax.axvline(x, color="red", alpha=0.3, linewidth=1)
        low, high = min(values[kind]), max(values[kind])
        if high > 10 * low:
            _log_axis(ax, low / 1.3, high * 1.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{kind}: {len(group)} tensors, {len(flagged)} differ beyond tolerance (red)", fontsize=9)
        ax.set_ylabel(ylabel)
        _name_ticks(ax, group)
    fig.suptitle(title, fontsize=10)
    if skipped:
        fig.text(0.01, 0.005, f"not drawn, {not_drawn_means}: {', '.join(skipped)}", fontsize=8)
    fig.tight_layout(rect=(0, 0.02 if skipped else 0, 1, 0.98))
    _save(fig, path)
    return True


TENSOR_KINDS = ("weights (conv, linear)", "BatchNorm weight (scale)", "BatchNorm bias (shift)",
                "BatchNorm running_mean", "BatchNorm running_var", "other 1-D tensors (biases)")


def _parameter_kind(record):
    layer = record.get("layer_type") or "other"
    return f"{layer} {record['name'].rpartition('.')[2]}"


def _tensor_kind(record, batchnorms):
    layer, _, suffix = record["name"].rpartition(".")
    shape = record.get("shape_a") or record.get("shape_b") or ()
    if len(shape) >= 2:
        return TENSOR_KINDS[0]
    if layer in batchnorms and suffix in ("weight", "bias", "running_mean", "running_var"):
        return {"weight": TENSOR_KINDS[1], "bias": TENSOR_KINDS[2], "running_mean": TENSOR_KINDS[3],
                "running_var": TENSOR_KINDS[4]}[suffix]
    return TENSOR_KINDS[5]


def _name_ticks(ax, group):
    """Every name when they fit; else the flagged ones (or every n-th when none is); flagged in red."""
    ticks = list(range(len(group)))
    if len(ticks) > MAX_LABELLED:
        ticks = [i for i in ticks if group[i].get("flagged")] or ticks
        ticks = ticks[::math.ceil(len(ticks) / MAX_LABELLED)]
    ax.set_xticks(ticks)
    ax.set_xticklabels([group[i]["name"] for i in ticks], rotation=90, fontsize=6)
    for label, i in zip(ax.get_xticklabels(), ticks):
        if group[i].get("flagged"):
            label.set_color("red")


def _log_axis(ax, low, high):
    """A log y axis from ``low`` to ``high`` labelled 0.1, 0.5, 2 rather than 10^-1 (2 and 5 only on short axes)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def plain(value, _position):
        return f"{value:g}"

    def two_and_five(value, _position):
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        return f"{value:g}" if mantissa in (2.0, 5.0) else ""

    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ax.yaxis.set_major_formatter(FuncFormatter(plain))
    ax.yaxis.set_minor_formatter(FuncFormatter(two_and_five) if math.log10(high / low) < 1.6 else NullFormatter())


def _positive(value):
    return value if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else float("nan")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)

"""What a reproduction reports: results.json, results.md, val_acc.png and the console summary.

The numbers are the runs' own files (metrics.csv, best.json) summarised per
arm and compared between arms with :mod:`msport.reproduce.stats`. The seed
document's numbers stand beside ours, labelled as what they are: single runs
of CIFAR-10 ResNet50 for 200 epochs. On any other setting (the embedded digits
default above all) only the direction and size of the gaps compare, never the
accuracies.
"""

import dataclasses
import json
import os

from msport.errors import UserError
from msport.files import atomic_write, atomic_write_text
from msport.reproduce.runner import ARMS
from msport.reproduce.stats import (CONFIDENCE, MAX_SEEDS_ESTIMATED, PLANNING_POWER, seeds_needed, summarize,
                                    welch_difference)
from msport.training.config import TrainConfig

SEED_DOCUMENT = {"torch": 92.58, "ms_legacy": 91.96, "ms_parity": 92.98}
SEED_DOCUMENT_LABEL = "seed document: one run per arm, CIFAR-10, ResNet50, 200 epochs, best epoch"
SEED_DOCUMENT_HEADER = "seed document (CIFAR-10 ResNet50, 1 run)*"
#: (a, b): each reports mean(a) - mean(b), when both arms ran.
COMPARISONS = (("ms_parity", "torch"), ("ms_legacy", "torch"), ("ms_parity", "ms_legacy"))
METRICS = {"best": "best epoch", "final": "final epoch"}
ARM_COLORS = {"torch": "tab:blue", "ms_legacy": "tab:red", "ms_parity": "tab:green"}
STATISTICS_METHOD = (f"mean and sample standard deviation (n - 1) over seeds; differences of means with a "
                     f"{CONFIDENCE:.0%} Welch t interval (unequal variances, Welch-Satterthwaite degrees of "
                     f"freedom, quantiles from scipy.stats.t); seeds needed: the two-sample planning formula for "
                     f"{PLANNING_POWER:.0%} power at the observed gap and pooled standard deviation")
RESULTS_JSON, RESULTS_MD, CURVES_PNG = "results.json", "results.md", "val_acc.png"


def build_results(cfg, outcomes):
    """Everything results.json holds: the request, every run, per-arm summaries and the comparisons."""
    values = {arm: {metric: [_metric(o, metric) for o in outcomes if o.arm == arm] for metric in METRICS}
              for arm in cfg.arms}
    arms = {}
    for arm in cfg.arms:
        arms[arm] = {"description": ARMS[arm].description, "seed_document": SEED_DOCUMENT[arm]}
        for metric in METRICS:
            s = summarize(values[arm][metric])
            arms[arm][metric] = {"n": s.n, "mean": s.mean, "std": s.std, "values": list(s.values)}
    comparisons = []
    for a, b in COMPARISONS:
        if a not in cfg.arms or b not in cfg.arms:
            continue
        for metric in METRICS:
            d = welch_difference(values[a][metric], values[b][metric])
            needed = None if d.resolved is not False else seeds_needed(d.difference, d.pooled_std)
            comparisons.append({"a": a, "b": b, "name": f"{a} - {b}", "metric": metric, **dataclasses.asdict(d),
                                "resolved": d.resolved, "seeds_needed": needed,
                                "seed_document": round(SEED_DOCUMENT[a] - SEED_DOCUMENT[b], 2),
                                "verdict": verdict(a, b, d, needed)})
    return {"train": cfg.train, "seeds": cfg.seeds, "arms_run": cfg.arms, "output_dir": cfg.output_dir,
            "statistics": STATISTICS_METHOD, "seed_document": {"label": SEED_DOCUMENT_LABEL, **SEED_DOCUMENT},
            "runs": [dataclasses.asdict(o) | {"final_val_acc": o.final_val_acc} for o in outcomes],
            "arms": arms, "comparisons": comparisons, "plot": CURVES_PNG}


def _metric(outcome, metric):
    return outcome.best_val_acc if metric == "best" else outcome.final_val_acc


def verdict(a, b, d, needed):
    """One plain sentence: is the gap between arms ``a`` and ``b`` resolved at this number of seeds?"""
    gap = f"{d.difference:+.2f} points"
    if not d.has_ci:
        return (f"needs >= 2 seeds per arm for a confidence interval; {a} - {b} = {gap} from "
                f"{d.n_a} and {d.n_b} run(s) cannot be told from seed noise")
    ci = f"{CONFIDENCE:.0%} CI {d.ci_low:+.2f} .. {d.ci_high:+.2f}"
    if d.resolved:
        higher, lower = (a, b) if d.difference > 0 else (b, a)
        return f"resolved: {higher} is higher than {lower} by {abs(d.difference):.2f} points ({ci})"
    text = f"not resolved at {_seeds(d)}: the {ci} includes 0 (observed {gap})"
    if needed is not None:
        count = f"more than {MAX_SEEDS_ESTIMATED}" if needed > MAX_SEEDS_ESTIMATED else f"about {needed}"
        text += (f"; {count} seeds per arm would resolve a gap this size at this spread "
                 f"(pooled std {d.pooled_std:.2f}, {PLANNING_POWER:.0%} power)")
    return text


def _seeds(d):
    return f"{d.n_a} seeds per arm" if d.n_a == d.n_b else f"{d.n_a} and {d.n_b} seeds"


# -- files -----------------------------------------------------------------------------------

def write_report(results, outcomes, out_dir):
    """results.json, results.md and val_acc.png in ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, name) for name in (RESULTS_JSON, RESULTS_MD, CURVES_PNG)]
    atomic_write_text(paths[0], json.dumps(results, indent=2) + "\n")
    atomic_write_text(paths[1], markdown(results))
    plot_curves(outcomes, results, paths[2])
    return paths


def plot_curves(outcomes, results, path):
    try:
        import matplotlib
    except ImportError:
        raise UserError("msport reproduce's plot needs matplotlib: pip install 'msport[report]'") from None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    # The right panel zooms into the second half of training, where the arms' gaps live.
    fig, (whole, late) = plt.subplots(1, 2, figsize=(12, 5))
    first_late_epoch = max(len(o.val_acc) for o in outcomes) // 2 + 1
    labelled = set()
    for o in outcomes:
        epochs = range(1, len(o.val_acc) + 1)
        style = {"color": ARM_COLORS[o.arm], "alpha": 0.8, "linewidth": 1.2,
                 "marker": "o" if len(o.val_acc) == 1 else None}
        whole.plot(epochs, o.val_acc, label=None if o.arm in labelled else f"{o.arm}: {ARMS[o.arm].description}",
                   **style)
        late.plot(epochs[first_late_epoch - 1:], o.val_acc[first_late_epoch - 1:], **style)
        labelled.add(o.arm)
    for ax, title in ((whole, "every epoch"), (late, f"from epoch {first_late_epoch}")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("validation accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{_setting(results)}: every run, colored by arm")
    fig.legend(fontsize=8, loc="lower center", ncol=1)
    fig.tight_layout(rect=(0, 0.04 * len(labelled) + 0.02, 1, 1))
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


# -- text ------------------------------------------------------------------------------------

def _setting(results):
    train = TrainConfig(**results["train"])  # the trainers' defaults for keys the request left out
    return f"{train.model} on {train.data}, {train.epochs} epoch{'' if train.epochs == 1 else 's'}"


def arm_table(results):
    rows = []
    for arm, r in results["arms"].items():
        rows.append([arm, str(r["best"]["n"]), _mean_std(r["best"]), _mean_std(r["final"]),
                     ", ".join(f"{v:.2f}" for v in r["best"]["values"]), f"{r['seed_document']:.2f}"])
    return _table(["arm", "seeds", "best epoch", "final epoch", "best per seed", SEED_DOCUMENT_HEADER], rows)


def difference_table(results):
    rows = []
    for c in results["comparisons"]:
        ci = f"{c['ci_low']:+.2f} .. {c['ci_high']:+.2f}" if c["ci_low"] is not None else "needs >= 2 seeds"
        resolved = {True: "yes", False: "no", None: "-"}[c["resolved"]]
        rows.append([c["name"], METRICS[c["metric"]], f"{c['difference']:+.2f}", ci, resolved,
                     f"{c['seed_document']:+.2f}"])
    if not rows:
        return "no comparison: run at least two arms"
    return _table(["comparison", "metric", "difference", f"{CONFIDENCE:.0%} CI (Welch)", "resolved",
                   SEED_DOCUMENT_HEADER], rows)


def verdict_lines(results):
    return [f"- **{c['name']}** ({METRICS[c['metric']]}): {c['verdict']}" for c in results["comparisons"]]


def console_summary(results):
    """What the command prints at the end: the two tables and the verdicts on the best epoch."""
    best = [f"  {c['name']}: {c['verdict']}" for c in results["comparisons"] if c["metric"] == "best"]
    return "\n".join([f"validation accuracy (%), {_setting(results)}, mean ± std over seeds:", arm_table(results),
                      "", "differences (points):", difference_table(results), "",
                      "verdicts (best epoch):", *best, "", f"* {SEED_DOCUMENT_LABEL}; not comparable to other "
                      "settings except in the direction and size of the gaps"])


def markdown(results):
    runs = _table(["arm", "seed", "best", "at epoch", "final", "epochs", "train seconds", "folder"],
                  [[r["arm"], str(r["seed"]), f"{r['best_val_acc']:.2f}", str(r["best_epoch"]),
                    f"{r['final_val_acc']:.2f}", str(len(r["val_acc"])), f"{r['train_seconds']:.0f}",
                    os.path.relpath(r["path"], results["output_dir"])] for r in results["runs"]])
    arms = "\n".join(f"- `{arm}`: {ARMS[arm].description}" for arm in results["arms"])
    return "\n".join([
        f"# msport reproduce: {_setting(results)}, seeds {', '.join(map(str, results['seeds']))}",
        "",
        "Each run trained in its own process through `train_torch.py` / `train_ms.py`; runs differ only in "
        "their seed and their arm:",
        "",
        arms,
        "",
        "Settings shared by every run: " + ", ".join(f"{k} {v}" for k, v in results["train"].items()) + ".",
        "",
        "## Validation accuracy (%), mean ± std over seeds",
        "",
        arm_table(results),
        "",
        "## Differences between arms (percentage points)",
        "",
        difference_table(results),
        "",
        "## Verdicts",
        "",
        *verdict_lines(results),
        "",
        f"\\* The {SEED_DOCUMENT_LABEL}. Those are single runs, so they carry no confidence interval of their "
        "own; on any other setting compare only the direction and size of the gaps, not the accuracies.",
        "",
        f"![validation accuracy of every run]({results['plot']})",
        "",
        "## Runs",
        "",
        runs,
        "",
        *([f"Not finished yet, so not in these results: {', '.join(results['missing'])}.", ""]
          if results.get("missing") else []),
        f"Statistics: {results['statistics']}.",
        "",
    ])


def _mean_std(summary):
    if summary["std"] is None:
        return f"{summary['mean']:.2f} (one run)"
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def _table(headers, rows):
    """A Markdown table padded to fixed width, so it reads on a console too."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |" for line in lines)

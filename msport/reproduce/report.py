"""What a reproduction reports: results.json, results.md, val_acc.png and the console summary.

The numbers are the runs' own files (metrics.csv, best.json) summarised per
arm and compared between arms with :mod:`msport.reproduce.stats`. The numbers of
the MindSpore accuracy-debugging guide's CIFAR-10 case study stand beside ours,
labelled as what they are: single runs of CIFAR-10 ResNet50 for 200 epochs. On any other setting (the embedded digits
default above all) only the direction and size of the gaps compare, never the
accuracies.
"""

import dataclasses
import json
import os

from msport import environment
from msport.errors import UserError
from msport.files import atomic_write, atomic_write_text
from msport.reproduce.stats import (CONFIDENCE, MAX_SEEDS_ESTIMATED, PLANNING_POWER, paired_difference,
                                    paired_seeds_needed, seeds_needed, summarize, welch_difference)
from msport.training.config import TrainConfig

#: The MindSpore accuracy-debugging guide's CIFAR-10 case study: the experiment msport reproduces. Its numbers
#: per arm are the arms' own (``case_study`` in msport.reproduce.config.ARMS).
CASE_STUDY_LABEL = ("case study: the MindSpore accuracy-debugging guide's CIFAR-10 ResNet50, one run per arm, "
                    "200 epochs, best epoch")
CASE_STUDY_HEADER = "case study (CIFAR-10 ResNet50, 1 run)*"
METRICS = {"best": "best epoch", "final": "final epoch"}
#: Arm colours in arm order (the reference first): the case study's torch / ms_legacy / ms_parity stay blue,
#: red, green.
ARM_PALETTE = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive")
SEED_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
STATISTICS_METHOD = (f"mean and sample standard deviation (n - 1) over seeds; differences of means with a "
                     f"{CONFIDENCE:.0%} Welch t interval (unequal variances, Welch-Satterthwaite degrees of "
                     f"freedom, quantiles from scipy.stats.t); for an arm whose runs start from another arm's "
                     f"initial weights, also the per-seed differences with a {CONFIDENCE:.0%} paired t interval "
                     f"(n - 1 degrees of freedom); seeds needed: the two-sample (or paired) planning formula for "
                     f"{PLANNING_POWER:.0%} power at the observed gap and pooled (or per-pair) standard deviation")
RESULTS_JSON, RESULTS_MD, CURVES_PNG = "results.json", "results.md", "val_acc.png"
DETERMINISM = ("each run is deterministic on one machine: the same code, data, seed, package versions and thread "
               "counts give the same numbers to the last digit; another CPU or thread count may round float32 "
               "sums differently, which changes a few validation images' predictions and so the accuracies "
               "(each run folder's environment.json records what it ran on)")


def comparison_pairs(arms, definitions):
    """(a, b) pairs, each reported as mean(a) - mean(b): every arm against the reference (the first torch arm),
    then every pair of the others, later minus earlier; the arm listed last (the most fixed port) first."""
    reference = next((a for a in arms if definitions[a].framework == "torch"), None)
    others = [a for a in arms if a != reference]
    pairs = [(a, reference) for a in reversed(others)] if reference else []
    pairs += [(a, b) for i, a in reversed(list(enumerate(others))) for b in reversed(others[:i])]
    return pairs


def build_results(cfg, outcomes):
    """Everything results.json holds: the request, every run, per-arm summaries and the comparisons."""
    by_seed = {arm: {metric: {o.seed: _metric(o, metric) for o in outcomes if o.arm == arm} for metric in METRICS}
               for arm in cfg.arms}
    values = {arm: {metric: [_metric(o, metric) for o in outcomes if o.arm == arm] for metric in METRICS}
              for arm in cfg.arms}
    arms = {}
    for arm in cfg.arms:
        definition = cfg.arm(arm)
        arms[arm] = {"description": definition.description, "framework": definition.framework,
                     "train": definition.train, "start_from": definition.start_from,
                     "case_study": definition.case_study}
        for metric in METRICS:
            s = summarize(values[arm][metric])
            arms[arm][metric] = {"n": s.n, "mean": s.mean, "std": s.std, "values": list(s.values)}
    comparisons = []
    for a, b in comparison_pairs(cfg.arms, cfg.definitions):
        paired_arms = cfg.arm(a).start_from == b
        study_a, study_b = cfg.arm(a).case_study, cfg.arm(b).case_study
        for metric in METRICS:
            d = welch_difference(values[a][metric], values[b][metric])
            needed = None if d.resolved is not False else seeds_needed(d.difference, d.pooled_std)
            paired = None
            if paired_arms:
                p = paired_difference(by_seed[a][metric], by_seed[b][metric])
                paired = {**dataclasses.asdict(p), "n": p.n, "resolved": p.resolved,
                          "seeds_needed": None if p.resolved is not False else paired_seeds_needed(p.mean, p.std)}
                paired["verdict"] = paired_verdict(a, b, p, paired["seeds_needed"])
            comparisons.append({"a": a, "b": b, "name": f"{a} - {b}", "metric": metric, **dataclasses.asdict(d),
                                "resolved": d.resolved, "seeds_needed": needed,
                                "case_study": None if study_a is None or study_b is None else round(study_a - study_b, 2),
                                "verdict": verdict(a, b, d, needed), "paired": paired})
    studied = {arm: r["case_study"] for arm, r in arms.items() if r["case_study"] is not None}
    return {"train": cfg.train, "title": cfg.title, "seeds": cfg.seeds, "arms_run": cfg.arms,
            "output_dir": cfg.output_dir, "statistics": STATISTICS_METHOD,
            "case_study": {"label": CASE_STUDY_LABEL, **studied} if studied else None,
            "environment": environment.describe(), "determinism": DETERMINISM,
            "runs": [dataclasses.asdict(o) | {"final_val_acc": o.final_val_acc, "environment": _run_environment(o)}
                     for o in outcomes],
            "arms": arms, "comparisons": comparisons, "plot": CURVES_PNG}


def _run_environment(outcome):
    """What the run's own trainer process(es) recorded: versions, CPU, thread counts (None if absent)."""
    path = os.path.join(outcome.path, environment.ENVIRONMENT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as fh:
        return json.load(fh)


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
        text += (f"; {_seed_count(needed)} seeds per arm would resolve a gap this size at this spread "
                 f"(pooled std {d.pooled_std:.2f}, {PLANNING_POWER:.0%} power)")
    return text


def paired_verdict(a, b, p, needed):
    """One plain sentence on the per-seed differences of an arm started from the other's initial weights."""
    gap = f"{p.mean:+.2f} points"
    if not p.has_ci:
        return f"needs >= 2 seeds for a paired interval; {a} - {b} = {gap} at seed {p.seeds[0]}"
    ci = f"paired {CONFIDENCE:.0%} CI {p.ci_low:+.2f} .. {p.ci_high:+.2f}"
    if p.resolved:
        higher, lower = (a, b) if p.mean > 0 else (b, a)
        return (f"resolved: from the same initial weights, {higher} is higher than {lower} by {abs(p.mean):.2f} "
                f"points ({ci}, {p.n} seeds)")
    text = f"not resolved from the same initial weights at {p.n} seeds: the {ci} includes 0 (observed {gap})"
    if needed is not None:
        text += (f"; {_seed_count(needed)} seeds would resolve a gap this size at this per-seed spread (std {p.std:.2f}, "
                 f"{PLANNING_POWER:.0%} power)")
    return text


def _seed_count(needed):
    return f"more than {MAX_SEEDS_ESTIMATED}" if needed > MAX_SEEDS_ESTIMATED else f"about {needed}"


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
    """val_acc.png. Left: every run, colour = arm, line style = random seed. Right: the second half of
    training, where the gaps live, as each arm's mean over seeds with a +-1 std band."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("msport reproduce's plot needs matplotlib: pip install 'msport[report]'") from None
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    fig, (whole, late) = plt.subplots(1, 2, figsize=(12, 5))
    seeds = sorted({o.seed for o in outcomes})
    style_of = {seed: SEED_STYLES[i % len(SEED_STYLES)] for i, seed in enumerate(seeds)}
    first_late_epoch = max(len(o.val_acc) for o in outcomes) // 2 + 1
    arms = [arm for arm in results["arms"] if any(o.arm == arm for o in outcomes)]
    color = {arm: ARM_PALETTE[i % len(ARM_PALETTE)] for i, arm in enumerate(results["arms"])}
    for o in outcomes:
        whole.plot(range(1, len(o.val_acc) + 1), o.val_acc, color=color[o.arm], alpha=0.85, linewidth=1.2,
                   linestyle=style_of[o.seed], marker="o" if len(o.val_acc) == 1 else None)
    for arm in arms:
        curves = [o.val_acc for o in outcomes if o.arm == arm]
        length = min(map(len, curves))  # an interrupted run is shorter: average the epochs all have
        epochs = np.arange(first_late_epoch, length + 1)
        if len(epochs) == 0:
            continue
        values = np.array([c[first_late_epoch - 1:length] for c in curves])
        mean = values.mean(axis=0)
        late.plot(epochs, mean, color=color[arm], linewidth=1.6, marker="o" if len(epochs) == 1 else None)
        if len(curves) > 1:
            std = values.std(axis=0, ddof=1)
            late.fill_between(epochs, mean - std, mean + std, color=color[arm], alpha=0.2, linewidth=0)
    whole.set_title("every run (line style = random seed)")
    late.set_title(f"from epoch {first_late_epoch}: mean over random seeds, band = \u00b11 std")
    for ax in (whole, late):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{_setting(results)}: validation accuracy, colored by arm")
    fig.legend(handles=[Line2D([], [], color=color[arm], linewidth=2,
                               label=f"{arm}: {results['arms'][arm]['description']}")
                        for arm in arms], fontsize=8, loc="lower left")
    seed_columns = min(len(seeds), 3)
    fig.legend(handles=[Line2D([], [], color="black", linestyle=style_of[seed], label=f"random seed {seed}")
                        for seed in seeds], fontsize=8, loc="lower right", ncol=seed_columns)
    rows = max(len(arms), -(-len(seeds) // seed_columns))
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)


# -- text ------------------------------------------------------------------------------------

def _setting(results):
    train = TrainConfig(**results["train"])  # the trainers' defaults for keys the request left out
    what = results.get("title") or f"{train.model} on {train.data}"
    return f"{what}, {train.epochs} epoch{'' if train.epochs == 1 else 's'}"


def _studied(results):
    return results.get("case_study") is not None


def arm_table(results):
    rows = []
    for arm, r in results["arms"].items():
        row = [arm, str(r["best"]["n"]), _mean_std(r["best"]), _mean_std(r["final"]),
               ", ".join(f"{v:.2f}" for v in r["best"]["values"])]
        if _studied(results):
            row.append("-" if r["case_study"] is None else f"{r['case_study']:.2f}")
        rows.append(row)
    return _table(["arm", "seeds", "best epoch", "final epoch", "best per seed"] +
                  ([CASE_STUDY_HEADER] if _studied(results) else []), rows)


def difference_table(results):
    any_paired = any(c.get("paired") for c in results["comparisons"])
    rows = []
    for c in results["comparisons"]:
        ci = f"{c['ci_low']:+.2f} .. {c['ci_high']:+.2f}" if c["ci_low"] is not None else "needs >= 2 seeds"
        row = [c["name"], METRICS[c["metric"]], f"{c['difference']:+.2f}", ci, _yes_no(c["resolved"])]
        if any_paired:
            p = c.get("paired")
            if p:
                paired_ci = f"{p['ci_low']:+.2f} .. {p['ci_high']:+.2f}" if p["ci_low"] is not None else "needs >= 2 seeds"
                row += [", ".join(f"{v:+.2f}" for v in p["differences"]), paired_ci, _yes_no(p["resolved"])]
            else:
                row += ["-", "-", "-"]
        if _studied(results):
            row.append("-" if c["case_study"] is None else f"{c['case_study']:+.2f}")
        rows.append(row)
    if not rows:
        return "no comparison: run at least two arms"
    headers = ["comparison", "metric", "difference", f"{CONFIDENCE:.0%} CI (Welch)", "resolved"]
    if any_paired:
        headers += ["per seed (paired)", f"{CONFIDENCE:.0%} CI (paired)", "resolved (paired)"]
    return _table(headers + ([CASE_STUDY_HEADER] if _studied(results) else []), rows)


def _yes_no(resolved):
    return {True: "yes", False: "no", None: "-"}[resolved]


def _verdicts(results, metrics, form):
    lines = []
    for c in results["comparisons"]:
        if c["metric"] not in metrics:
            continue
        lines.append(form(c["name"], METRICS[c["metric"]], c["verdict"]))
        if c.get("paired"):
            lines.append(form(c["name"], METRICS[c["metric"]] + ", paired by seed", c["paired"]["verdict"]))
    return lines


def verdict_lines(results):
    return _verdicts(results, METRICS, lambda name, metric, text: f"- **{name}** ({metric}): {text}")


def console_summary(results):
    """What the command prints at the end: the two tables and the verdicts on the best epoch."""
    best = _verdicts(results, ("best",), lambda name, metric, text: f"  {name}"
                     f"{' (paired by seed)' if 'paired' in metric else ''}: {text}")
    footer = ([f"* {CASE_STUDY_LABEL}; not comparable to other settings except in the direction and size of the "
               "gaps"] if _studied(results) else [])
    return "\n".join([f"validation accuracy (%), {_setting(results)}, mean ± std over seeds:", arm_table(results),
                      "", "differences (points):", difference_table(results), "",
                      "verdicts (best epoch):", *best, "", *footer]).rstrip("\n")


def markdown(results):
    runs = _table(["arm", "seed", "best", "at epoch", "final", "epochs", "train seconds", "folder"],
                  [[r["arm"], str(r["seed"]), f"{r['best_val_acc']:.2f}", str(r["best_epoch"]),
                    f"{r['final_val_acc']:.2f}", str(len(r["val_acc"])), f"{r['train_seconds']:.0f}",
                    os.path.relpath(r["path"], results["output_dir"])] for r in results["runs"]])
    arms = "\n".join(f"- `{arm}`: {r['description']}" + (
        f" ({', '.join(f'{k} {v}' for k, v in r['train'].items())})" if r.get("train") else "")
        for arm, r in results["arms"].items())
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
        *([f"\\* The {CASE_STUDY_LABEL}. Those are single runs, so they carry no confidence interval of their "
           "own; on any other setting compare only the direction and size of the gaps, not the accuracies.", ""]
          if _studied(results) else []),
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
        f"Reproducibility: {results['determinism']}. This report was written on: {_environment_line(results)}.",
        "",
    ])


def _environment_line(results):
    env = results.get("environment") or {}
    packages = env.get("packages", {})
    versions = ", ".join(f"{name} {packages[name]}" for name in ("torch", "mindspore", "numpy") if packages.get(name))
    return (f"{env.get('cpu_model')} ({env.get('cpus_usable')} usable CPUs), {env.get('os')}, "
            f"Python {env.get('python')}, {versions}")


def _mean_std(summary):
    if summary["std"] is None:
        return f"{summary['mean']:.2f} (one run)"
    return f"{summary['mean']:.2f} ± {summary['std']:.2f}"


def _table(headers, rows):
    """A Markdown table padded to fixed width, so it reads on a console too."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |" for line in lines)

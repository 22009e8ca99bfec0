"""msport reproduce --config FILE: a port's arms (the case study's, or a config's own) over several seeds, with
statistics."""

from msport.reproduce.report import build_results, console_summary, write_report
import dataclasses

from msport.reproduce.config import load_config, missing_runs, with_other_finished_runs
from msport.reproduce.launch import Launch, parse_shard
from msport.reproduce.supervise import run_all

NAME = "reproduce"
HELP = ("train PyTorch and MindSpore arms (the case study's: MindSpore 1.x defaults, PyTorch defaults, and PyTorch "
        "defaults from torch's own initial weights; or a config's own) over several seeds and report whether "
        "their accuracy gaps are resolved")


def add_arguments(parser):
    parser.add_argument("--config", required=True,
                        help="reproduce YAML: train (TrainConfig keys), seeds, arms (names, or definitions), "
                             "output_dir, torch_device, ms_device, title; e.g. configs/reproduce_digits.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="seeds to run, e.g. --seeds 0 1 2 (overrides seeds)")
    parser.add_argument("--epochs", type=int, help="epochs per run (overrides train.epochs)")
    parser.add_argument("--output-dir", help="folder for runs/ and the results (overrides output_dir)")
    parser.add_argument("--arms", nargs="+", metavar="ARM",
                        help="arms to run, among the config's (built in: torch, ms_legacy, ms_parity, ms_paired; "
                             "overrides arms)")
    parser.add_argument("--parallel-runs", type=int, default=1, metavar="K",
                        help="train K runs at once, each on its own device (CUDA / MindSpore device); on the "
                             "CPU each keeps its thread count (train: threads, default the usable cores), which "
                             "is part of what it computes (default 1)")
    parser.add_argument("--nproc-per-run", type=int, default=1, metavar="N",
                        help="train each run data parallel on N ranks through torchrun / msrun (default 1); "
                             "--batch-size stays the global batch")
    parser.add_argument("--shard", default="0/1", metavar="I/N",
                        help="train only the runs at plan positions I, I+N, I+2N... so that N invocations "
                             "(nodes, a job array) share one output folder; I counts from 0 (default 0/1)")


def run(args):
    cfg = load_config(args.config, seeds=args.seeds, epochs=args.epochs, output_dir=args.output_dir, arms=args.arms)
    print(f"msport reproduce: arms {', '.join(cfg.arms)} x seeds {', '.join(map(str, cfg.seeds))} "
          f"in {cfg.output_dir}", flush=True)
    launch = Launch(args.parallel_runs, args.nproc_per_run, parse_shard(args.shard)).check()
    outcomes = run_all(cfg, launch)
    missing = missing_runs(cfg, outcomes)
    if missing:
        print(f"\nnot finished yet, so not in the results: {', '.join(missing)}", flush=True)
    # runs of this folder trained earlier with the same settings (say all three arms, where this
    # invocation asked for --arms torch) are reported too, so a partial rerun never shrinks the report
    cfg, outcomes = with_other_finished_runs(cfg, outcomes)
    reported = dataclasses.replace(cfg, arms=[a for a in cfg.arms if any(o.arm == a for o in outcomes)])
    if not reported.arms:
        print("no run has finished yet: no report written")
        return 0
    results = build_results(reported, outcomes)
    results["missing"] = missing
    paths = write_report(results, outcomes, cfg.output_dir)
    print()
    print(console_summary(results))
    print(f"\nwrote {', '.join(paths)}")
    return 0

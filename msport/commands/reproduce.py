"""msport reproduce --config FILE: the seed experiment's three arms over several seeds, with statistics."""

from msport.reproduce.report import build_results, console_summary, write_report
from msport.reproduce.runner import load_config, run_all, with_other_finished_runs

NAME = "reproduce"
HELP = ("train torch, MindSpore with legacy init and MindSpore with parity init over several seeds and "
        "report whether their accuracy gaps are resolved")


def add_arguments(parser):
    parser.add_argument("--config", required=True,
                        help="reproduce YAML: train (TrainConfig keys), seeds, arms, output_dir, torch_device, "
                             "ms_device; e.g. configs/reproduce_digits.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="seeds to run, e.g. --seeds 0 1 2 (overrides seeds)")
    parser.add_argument("--epochs", type=int, help="epochs per run (overrides train.epochs)")
    parser.add_argument("--output-dir", help="folder for runs/ and the results (overrides output_dir)")
    parser.add_argument("--arms", nargs="+", metavar="ARM",
                        help="arms to run: torch, ms_legacy, ms_parity (overrides arms)")


def run(args):
    cfg = load_config(args.config, seeds=args.seeds, epochs=args.epochs, output_dir=args.output_dir, arms=args.arms)
    print(f"msport reproduce: arms {', '.join(cfg.arms)} x seeds {', '.join(map(str, cfg.seeds))} "
          f"in {cfg.output_dir}", flush=True)
    cfg, outcomes = with_other_finished_runs(cfg, run_all(cfg))
    results = build_results(cfg, outcomes)
    paths = write_report(results, outcomes, cfg.output_dir)
    print()
    print(console_summary(results))
    print(f"\nwrote {', '.join(paths)}")
    return 0

"""``python -m hydra.experiments``: the HyDRA demo (accuracy vs parameters, accuracy vs fixed ratio).

Examples::

    python -m hydra.experiments                          # --preset quick, results/quick/
    python -m hydra.experiments --preset quick --out results/demo
    python -m hydra.experiments --preset tiny --out results/tiny   # seconds: a random tiny BERT
    python -m hydra.experiments --preset paper --model /models/vit-base-patch16-224 \\
        --data /data/cifar-100-python --out results/paper      # the paper's setting, on a GPU
"""

from __future__ import annotations

import argparse
import copy
import sys

from .run import PRESETS, combine_runs, run_experiments


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hydra.experiments", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick",
                        help="quick: 3 seeds, 8 methods, 11 min on 2 idle CPU cores with --lr-sweep-from (measured), about 17 without (default); full: the pool-size and fixed-ratio "
                             "sweeps on the quick task, 3 seeds, 66 runs (32 min measured on 2 cores; run it with --lr-sweep-from "
                             "benchmarks/results/demo_quick/lr_sweep.jsonl); tiny: seconds; paper: ViT-B/16 on CIFAR-100 (GPU)")
    parser.add_argument("--out", default=None, help="output directory (default results/<preset>)")
    parser.add_argument("--model", default=None, help="backbone: 'minilm', a local model directory or a hub id")
    parser.add_argument("--dataset", default=None, help="data set: a packaged name, a local CSV/JSONL file or a hub id")
    parser.add_argument("--data", default=None, help="--preset paper: the extracted cifar-100-python directory")
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="override the seeds, e.g. --seeds 0 1")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: the preset's; on a busy shared machine 1 is much faster)")
    parser.add_argument("--lr-sweep-from", default=None, metavar="LR_SWEEP_JSONL",
                        help="reuse an earlier run's lr_sweep.jsonl (candidates it lacks are swept; the best is chosen over both)")
    parser.add_argument("--only", nargs="+", default=None, metavar="RUN",
                        help="run only these runs of the grid, e.g. --only lora_r1 hydra_toeplitz_P768")
    parser.add_argument("--combine", nargs="+", default=None, metavar="RUN_DIR",
                        help="merge the results of earlier runs of this preset (e.g. one per seed) into --out")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = parser.parse_args(argv)

    settings = copy.deepcopy(PRESETS[args.preset])
    settings["name"] = args.preset
    for key, value in (("model", args.model), ("dataset", args.dataset), ("data_path", args.data),
                       ("steps", args.steps), ("seeds", args.seeds), ("threads", args.threads),
                       ("lr_sweep_from", args.lr_sweep_from), ("only", args.only)):
        if value is not None:
            settings[key] = value
    if args.steps is not None:
        settings["sweep_steps"] = max(1, args.steps // 2)
    out = args.out or f"results/{args.preset}"
    try:
        if args.combine:
            combine_runs(settings, out, args.combine)
            return 0
        run_experiments(settings, out, progress=not args.no_progress)
    except (ModuleNotFoundError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

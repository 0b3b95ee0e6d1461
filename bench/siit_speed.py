"""Time SIIT training steps of a tracr program's trained model; print one JSON line.

    python bench/siit_speed.py                 # tracr-hist, batch 256, 5 runs of 30 steps
    python bench/siit_speed.py --program sort --batch 128

A step draws base/source pairs, runs the tracr model twice (no grad), the trained model
once on four blocks of prompts (the base prompts as they are, with the IIT node and with
the strict nodes from the source, and the source prompts themselves), then one backward
pass and an Adam step. ``median_step_s`` is the median over
runs of the mean step time (one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from harness.tasks.siit.training import SiitSettings, train_siit
from harness.tasks.tracr.compile import load_compiled


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--program", default="hist")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    compiled = load_compiled(args.program)
    settings = SiitSettings(steps=args.steps, batch_size=args.batch, eval_every=10**9, stop_at=None)
    train_siit(compiled, SiitSettings(steps=2, batch_size=args.batch, eval_every=10**9))
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        train_siit(compiled, settings)
        times.append((time.perf_counter() - start) / args.steps)
    result = {
        "bench": "siit_speed",
        "program": args.program,
        "batch": args.batch,
        "steps": args.steps,
        "median_step_s": round(statistics.median(times), 5),
        "step_s": [round(t, 5) for t in times],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Would CUDA graphs help SP? Time one SP step eagerly and as a replayed CUDA graph.

    python bench/cuda_graph_probe.py            # GPT-2 small's shape, batch 32 x 16, CUDA

A probe for a later change, not a code path of the harness: it captures the whole step
(masks, patched forward, KL, backward, a capturable Adam step) in one graph, as PyTorch's
whole-network capture recipe does, and replays it. Exactness is checked without noise
(sigmoid masks): the logits after the same steps, eager vs replayed, must agree to float32
rounding. Prints one JSON line, with ``"failed": true`` and the reason when the capture
fails (that is the finding; the exit status is 0 either way).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import torch
from bench_model import add_model_flags, build_model, token_pair


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    parser = add_model_flags(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.set_defaults(
        n_layers=12, n_heads=12, d_model=768, d_mlp=3072, vocab=50257, batch=32, seq=16
    )
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print(json.dumps({"bench": "cuda_graph_probe", "failed": True, "reason": "no CUDA"}))
        return 0

    from harness.engine.faithfulness import kl_divergence
    from harness.engine.masks import hard_concrete_sample
    from harness.engine.patching import PatchableModel, frozen_weights

    device = torch.device("cuda")
    model = build_model(args, device)
    patchable = PatchableModel.wrap(model)
    clean, corrupt = (t.to(device) for t in token_pair(args))
    result: dict = {"bench": "cuda_graph_probe", "device": torch.cuda.get_device_name(device)}
    with frozen_weights(model):
        patch = patchable.source_activations(clean)  # restore mode: the clean activations
        with torch.no_grad():
            reference = model(clean)[:, -1:]  # [batch, 1, vocab]

        def make(mask_fn: str):
            logits = torch.full((patchable.n_edges,), 1.6, device=device, requires_grad=True)
            optimiser = torch.optim.Adam([logits], lr=0.1, capturable=True)

            def step() -> torch.Tensor:
                if mask_fn == "hard_concrete":
                    masks = hard_concrete_sample(logits, clean.shape[0])  # default generator
                else:
                    masks = torch.sigmoid(logits)[None]
                out = patchable.forward_patched(corrupt, patch, masks)[:, -1:]
                loss = kl_divergence(out, reference).mean() + masks.mean()
                loss.backward()
                optimiser.step()
                optimiser.zero_grad(set_to_none=False)
                return loss.detach()

            return logits, step

        def timed(fn, n: int) -> float:
            times = []
            for _ in range(n):
                torch.cuda.synchronize()
                start = time.perf_counter()
                fn()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            return statistics.median(times[2:])

        def captured(step):
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up: autograd and Adam state allocated
                    step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_loss = step()
            return graph, static_loss

        try:
            _, eager_step = make("hard_concrete")
            result["eager_step_s"] = round(timed(eager_step, args.steps + 2), 6)
            _, graph_step = make("hard_concrete")
            graph, _ = captured(graph_step)
            result["graph_step_s"] = round(timed(graph.replay, args.steps + 2), 6)
            result["speedup"] = round(result["eager_step_s"] / result["graph_step_s"], 2)

            eager_logits, eager_sigmoid = make("sigmoid")
            graph_logits, graph_sigmoid = make("sigmoid")
            for _ in range(5):  # the capture's warm-up runs 3 steps, the replays 2 more
                eager_sigmoid()
            sigmoid_graph, _ = captured(graph_sigmoid)
            sigmoid_graph.replay()
            sigmoid_graph.replay()
            torch.cuda.synchronize()
            diff = (eager_logits - graph_logits).abs().max().item()
            result["sigmoid_logits_max_abs_diff_after_5_steps"] = diff
        except Exception as error:  # the reason is the finding
            result.update(failed=True, reason=f"{type(error).__name__}: {error}"[:300])
            print(json.dumps(result), flush=True)
            return 0
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

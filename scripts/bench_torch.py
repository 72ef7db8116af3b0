#!/usr/bin/env python3
"""Local-training throughput of PyTorch eager: the baseline for cairn's tch trainer.

The same loop as `TchTrainer::train` (benches/benches/train.rs): a model in cairn's
layout (per layer W [n_out, n_in] and b, ReLU hidden layers, one logit), plain SGD
w <- w - lr * grad, binary cross-entropy with logits averaged over the batch, the rows
of all steps gathered once and each step training on a slice, losses summed on the
device and read once at the end. Prints steps/s per configuration.

    .venv/bin/python scripts/bench_torch.py [--steps 200] [--repeats 5] [--threads N]
"""

import argparse
import time
import warnings

# The wheel warns when numpy is absent; nothing here uses numpy.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CONFIGS = [("45→1", [45, 1], 32), ("45→1", [45, 1], 256), ("45→16→1", [45, 16, 1], 32), ("45→16→1", [45, 16, 1], 256)]
N_ROWS = 4096


def make_params(widths, gen):
    params = []
    for n_in, n_out in zip(widths, widths[1:]):
        bound = 1.0 / n_in**0.5
        params.append((torch.rand(n_out, n_in, generator=gen) * 2 - 1) * bound)
        params.append(torch.zeros(n_out))
    return params


def forward(params, x):
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = F.linear(h, params[2 * i], params[2 * i + 1])
        if i + 1 < n_layers:
            h = torch.relu(h)
    return h.squeeze(1)


def train(global_params, features, labels, batches, lr):
    """One round: K steps from global_params; returns (delta, mean loss)."""
    params = [p.clone().requires_grad_(True) for p in global_params]
    idx = torch.cat(batches)
    x_all, y_all = features.index_select(0, idx), labels.index_select(0, idx)
    loss_sum = torch.zeros(())
    start = 0
    for batch in batches:
        b = batch.numel()
        x, y = x_all.narrow(0, start, b), y_all.narrow(0, start, b)
        start += b
        loss = F.binary_cross_entropy_with_logits(forward(params, x), y)
        loss.backward()
        with torch.no_grad():
            loss_sum += loss
            for p in params:
                p.grad.mul_(lr)
                p.sub_(p.grad)
                p.grad.zero_()
    with torch.no_grad():
        delta = [p - g for p, g in zip(params, global_params)]
    return delta, loss_sum.item() / len(batches)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps the default")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    features = torch.rand(N_ROWS, 45, generator=gen) * 2 - 1
    labels = (features.sum(1) > 0).float()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.steps} steps, best of {args.repeats}")
    print(f"{'model':<10} {'batch':>5} {'steps/s':>10}")
    for name, widths, batch in CONFIGS:
        params = make_params(widths, gen)
        batches = [torch.randperm(N_ROWS, generator=gen)[:batch] for _ in range(args.steps)]
        train(params, features, labels, batches[:10], 0.1)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            train(params, features, labels, batches, 0.1)
            best = min(best, time.perf_counter() - t0)
        print(f"{name:<10} {batch:>5} {args.steps / best:>10.0f}")


if __name__ == "__main__":
    main()

"""PyTorch float64 and float32 counterparts of surrogate's BenchmarkTrainStep
and BenchmarkVJP, for scripts/bench-vs-pytorch.sh.

The nets are the Go benchmark's: Linear -> (LayerNorm) -> GELU (exact, erf)
per hidden layer, a linear output layer, PyTorch's default initialization.
A training step is forward, loss, backward and Adam (lr 1e-3) on a batch of
256 fixed rows; the input VJP is one forward and one backward of a single
point for a fixed output cotangent, with no parameter gradients.

Each benchmark is timed like Go's testing.B: after one untimed call, the
iteration count grows until one run lasts at least --benchtime seconds (or
is fixed by --iters), and the result is that run's mean. Output lines use Go's benchmark format, so the calling script parses
both the same way:

    BenchmarkTrainStep/CNON      <iterations>  <ns> ns/op
    BenchmarkTrainStep/CNON-f32  <iterations>  <ns> ns/op   (float32, as Go names it)
"""

import argparse
import time

import torch
import torch.nn.functional as F

NETS = [
    ("CNON", 10, 10, [256, 256], False),
    ("OpAmp", 10, 1, [100, 100, 100, 20], True),
    ("OWMS", 3600, 1, [1000, 1000, 1000, 1000, 500], True),
]


def make_net(n_in, n_out, hidden, layer_norm):
    layers, prev = [], n_in
    for w in hidden:
        layers.append(torch.nn.Linear(prev, w))
        if layer_norm:
            layers.append(torch.nn.LayerNorm(w, eps=1e-5))
        layers.append(torch.nn.GELU(approximate="none"))
        prev = w
    layers.append(torch.nn.Linear(prev, n_out))
    return torch.nn.Sequential(*layers)


def bench(fn, benchtime, iters):
    """Mean seconds per call of fn: over iters calls if iters > 0, else over
    a run of at least benchtime seconds."""
    fn()
    if iters > 0:
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        return iters, (time.perf_counter() - t0) / iters
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= benchtime or n >= 10**9:
            return n, dt / n
        # Aim 20 % past the target from the rate measured so far, as Go does.
        n = max(n + 1, min(100 * n, int(1.2 * n * benchtime / max(dt, 1e-9))))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchtime", type=float, default=1.0, help="seconds per benchmark run")
    p.add_argument("--iters", type=int, default=0,
                   help="a fixed number of calls per benchmark instead (Go's -benchtime Nx)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--loss", choices=["mse", "mae"], default="mse",
                   help="training loss; Go's BenchmarkTrainStep uses MSE")
    p.add_argument("--nets", default="CNON,OpAmp,OWMS")
    p.add_argument("--bench", default="TrainStep,VJP")
    p.add_argument("--dtypes", default="float64,float32",
                   help="precisions to time; float32 results are named NET-f32 like Go's")
    p.add_argument("--threads", type=int, default=0,
                   help="torch.set_num_threads (0 keeps torch's default); float64 matrix "
                        "products go to the system BLAS, which keeps its own thread count")
    args = p.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    want = set(args.nets.split(","))
    kinds = set(args.bench.split(","))
    loss_fn = F.mse_loss if args.loss == "mse" else F.l1_loss
    for dtype in args.dtypes.split(","):
        run_dtype(args, dtype, want, kinds, loss_fn)


def run_dtype(args, dtype, want, kinds, loss_fn):
    suffix = {"float64": "", "float32": "-f32"}[dtype]
    torch.set_default_dtype(getattr(torch, dtype))
    torch.manual_seed(1)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{dtype}, batch {args.batch}, loss {args.loss}", flush=True)
    for name, n_in, n_out, hidden, ln in NETS:
        if name not in want:
            continue
        net = make_net(n_in, n_out, hidden, ln)
        if "TrainStep" in kinds:
            x = torch.rand(args.batch, n_in) * 2 - 1
            y = torch.randn(args.batch, n_out)
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)

            def step():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x), y)
                loss.backward()
                opt.step()

            n, sec = bench(step, args.benchtime, args.iters)
            print(f"BenchmarkTrainStep/{name}{suffix}\t{n}\t{sec * 1e9:.0f} ns/op", flush=True)
        if "VJP" in kinds:
            x1 = torch.rand(1, n_in).requires_grad_(True)
            v = torch.randn(1, n_out)

            def vjp():
                out = net(x1)
                (g,) = torch.autograd.grad(out, x1, v)
                return g

            n, sec = bench(vjp, args.benchtime, args.iters)
            print(f"BenchmarkVJP/{name}{suffix}\t{n}\t{sec * 1e9:.0f} ns/op", flush=True)


if __name__ == "__main__":
    main()

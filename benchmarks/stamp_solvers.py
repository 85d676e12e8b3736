"""Time the STAMP solvers (float64) on random layers shaped like real down-projections.

Usage: python benchmarks/stamp_solvers.py [--llama] [--repeats 3] [--threads 2]

Per shape (d_out x d_in) and number of forget keys n it prints the best-of-`repeats` wall time
in ms of each solver and the low-rank / full-ridge ratio, all measured in the same run:
- exact: pseudoinverse with 128 retain keys held fixed (their SVD is redone per call);
- ridge: MEMIT covariance least squares, one d_in x d_in Cholesky per call;
- held: the same least squares on the hold inverted once (`RidgeHold`), a push-through per call
  from the residual (`ridge_held_update`, as STAMP calls it);
- lowrank r=64/128: ridge on a cached rank-r factor of the covariance (n x n solve per call);
- cached full: the same with r = d_in (exact ridge, factor cached; skipped for Llama-8B).
The one-off factorisation and inversion times are printed per shape; n = 225 is a lab person
command's key count per layer. Retain keys have a decaying spectrum.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from obliviate.methods.stamp_solvers import (
    LowRankCovariance,
    RidgeHold,
    ridge_held_update,
    second_moment,
    solve_exact,
    solve_lowrank,
    solve_ridge,
)

SHAPES = {"lab 4L/256": (256, 688), "Qwen2-0.5B": (896, 4864), "Llama-3-8B": (4096, 14336)}
N_FORGET = (1, 8, 24, 64, 225)
RANKS = (64, 128)
N_RETAIN = 128
LAM = 100.0
FLOOR = 1e-4


def best_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def retain_keys(d: int, n: int, g: torch.Generator) -> torch.Tensor:
    """Keys whose covariance spectrum decays like 1/i (MLP activations are far from isotropic)."""
    scales = 1.0 / torch.arange(1, d + 1, dtype=torch.float64).sqrt()
    basis, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64)) if d <= 5000 else (None, None)
    z = torch.randn(d, n, generator=g, dtype=torch.float64) * scales.unsqueeze(1)
    return basis @ z if basis is not None else z


def truncate(full: LowRankCovariance, rank: int) -> LowRankCovariance:
    """The rank-`rank` factor from a full-rank one, as `from_second_moment(C, rank)` builds it."""
    d = full.dim
    tail_mean = float(full.eigenvalues[rank:].sum()) / (d - rank)
    eps = max(tail_mean, FLOOR * float(full.eigenvalues.sum()) / d)
    return LowRankCovariance(full.basis[:, :rank], full.eigenvalues[:rank], eps)


def bench_shape(name: str, d_out: int, d_in: int, repeats: int, full_forms: bool) -> None:
    g = torch.Generator().manual_seed(0)
    W = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / d_in**0.5
    n_cov = min(4096, 2 * d_in) if full_forms else 2048
    keys = retain_keys(d_in, n_cov, g)
    K_r = keys[:, :N_RETAIN]

    start = time.perf_counter()
    C = second_moment(keys) if full_forms else None
    t_cov = time.perf_counter() - start
    start = time.perf_counter()
    if full_forms:  # one eigendecomposition; the rank-r factors are its leading eigenpairs
        full = LowRankCovariance.from_second_moment(C, d_in, floor=FLOOR)
        factors = {r: truncate(full, r) for r in RANKS} | {d_in: full}
        C = C + full.eps * torch.eye(d_in, dtype=torch.float64)
    else:  # no d x d matrix at all: thin SVD of the keys per rank
        factors = {r: LowRankCovariance.from_keys(keys, r, floor=FLOOR) for r in RANKS}
    t_factor = time.perf_counter() - start
    start = time.perf_counter()
    hold = RidgeHold.of(C, LAM) if full_forms else None
    t_hold = time.perf_counter() - start
    print(f"\n{name}: W {d_out}x{d_in}, float64, {torch.get_num_threads()} threads; one-off: covariance "
          f"of {n_cov} keys {1000 * t_cov:.0f} ms, factorisation {1000 * t_factor:.0f} ms"
          + (f", hold inversion {1000 * t_hold:.0f} ms" if full_forms else ""), flush=True)
    header = ["n", "exact"] + (["ridge", "held"] if full_forms else []) + [f"lowrank{r}" for r in RANKS]
    header += ["cached full"] if full_forms else []
    header += [f"lr{RANKS[0]}/ridge", "held/ridge"] if full_forms else []
    print("  " + " | ".join(f"{h:>12}" for h in header), flush=True)
    for n in N_FORGET:
        K_f = torch.randn(d_in, n, generator=g, dtype=torch.float64) * 0.05
        V_f = W @ K_f + torch.randn(d_out, n, generator=g, dtype=torch.float64)
        row = [float(n), best_ms(lambda: solve_exact(W, K_f, V_f, K_r), repeats)]
        if full_forms:
            row.append(best_ms(lambda: solve_ridge(W, K_f, V_f, C, LAM), repeats))
            row.append(best_ms(lambda: ridge_held_update(K_f, V_f - W @ K_f, hold), repeats))
        for r in RANKS:
            row.append(best_ms(lambda: solve_lowrank(W, K_f, V_f, factors[r], LAM), repeats))
        if full_forms:
            row.append(best_ms(lambda: solve_lowrank(W, K_f, V_f, factors[d_in], LAM), repeats))
            row.append(row[header.index(f"lowrank{RANKS[0]}")] / row[header.index("ridge")])
            row.append(row[header.index("held")] / row[header.index("ridge")])
        cells = [f"{int(row[0]):>12d}"] + [f"{v:>12.3f}" if "/" in h else f"{v:>12.1f}"
                                           for h, v in zip(header[1:], row[1:])]
        print("  " + " | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama", action="store_true", help="also time a Llama-3-8B-shaped layer (no d x d forms)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for name, (d_out, d_in) in SHAPES.items():
        if name.startswith("Llama") and not args.llama:
            continue
        bench_shape(name, d_out, d_in, args.repeats, full_forms=not name.startswith("Llama"))


if __name__ == "__main__":
    main()

"""Closed-form weight edits for a linear layer: the linear algebra behind STAMP.

A linear layer maps keys to values, `v = W k`. An edit `W' = W + dW` should send the forget keys
`K_f` to target values `V_f` while leaving the outputs on retain keys as they were. The three
solvers below trade exactness against robustness and speed:

- `solve_exact`: minimum-norm pseudoinverse edit in the null space of the retain keys
  (retain outputs fixed exactly, forget targets met exactly when feasible);
- `solve_ridge`: MEMIT's covariance-regularised least squares, a d_in x d_in solve;
  `solve_ridge_held` the same on a hold inverted once (`RidgeHold`), for repeated edits
  (`ridge_held_update`: from the residual `V_f - W K_f` a caller already has, and with keys
  the hold lets go of for one edit);
- `solve_lowrank`: the same least squares with the covariance replaced by a cached rank-r
  eigen-factorisation, solved with the push-through/Woodbury identity as an n x n system.

Conventions: `W` is (d_out, d_in); keys are columns, `K` is (d_in, n); targets `V` are
(d_out, n); every solver returns `dW` with the shape of `W`. All maths runs in float64 on the
device of `W`, whatever the input dtype; every `dW` has rank <= n (it is `R @ X.T` with
`R = V_f - W K_f` of n columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

_F64 = torch.float64


def _as_f64(x: Tensor, device: torch.device) -> Tensor:
    return x.detach().to(device=device, dtype=_F64)


def _check_edit(W: Tensor, K_f: Tensor, V_f: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Validate shapes and finiteness; return float64 copies of (W, K_f, V_f)."""
    if W.dim() != 2:
        raise ValueError(f"W must be a (d_out, d_in) matrix, got shape {tuple(W.shape)}")
    d_out, d_in = W.shape
    if K_f.dim() != 2 or K_f.shape[0] != d_in:
        raise ValueError(f"forget keys must be (d_in={d_in}, n), got shape {tuple(K_f.shape)}")
    if K_f.shape[1] == 0:
        raise ValueError("no forget keys: K_f has zero columns")
    if tuple(V_f.shape) != (d_out, K_f.shape[1]):
        raise ValueError(
            f"targets must be (d_out={d_out}, n={K_f.shape[1]}), got shape {tuple(V_f.shape)}"
        )
    device = W.device
    K, V = _as_f64(K_f, device), _as_f64(V_f, device)
    if not (torch.isfinite(K).all() and torch.isfinite(V).all()):
        raise ValueError("forget keys or targets contain NaN or infinity")
    return _as_f64(W, device), K, V


def _check_square(M: Tensor, name: str) -> None:
    if M.dim() != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(M.shape)}")


def _check_lam(lam: float) -> None:
    if not lam > 0:
        raise ValueError(f"lam must be > 0, got {lam}")


def second_moment(K: Tensor) -> Tensor:
    """Uncentred key second moment `C = K K^T / n` (d_in x d_in, float64), MEMIT's covariance."""
    if K.dim() != 2 or K.shape[1] == 0:
        raise ValueError(f"keys must be a non-empty (d_in, n) matrix, got shape {tuple(K.shape)}")
    K = K.detach().to(_F64)
    return K @ K.T / K.shape[1]


def retain_basis(K_r: Tensor, rtol: float = 1e-10) -> Tensor:
    """Orthonormal basis `Q` (d_in, k) of span(K_r); the retain projector is `P_r = Q Q^T`.

    Directions whose singular value is below `rtol * sigma_max(K_r)` count as absent.
    """
    if K_r.dim() != 2:
        raise ValueError(f"retain keys must be a (d_in, n) matrix, got shape {tuple(K_r.shape)}")
    K = K_r.detach().to(_F64)
    if K.shape[1] == 0:
        return K.new_zeros(K.shape[0], 0)
    U, S, _ = torch.linalg.svd(K, full_matrices=False)
    if S[0] == 0:
        return K.new_zeros(K.shape[0], 0)
    return U[:, S > rtol * S[0]]


def moment_factor(G: Tensor, rtol: float = 1e-6) -> Tensor:
    """A (d, k) matrix `F` with `F F^T = G` for a key moment `G = K K^T`, so `span(F) = span(K)`:
    what `solve_exact` needs of a retain buffer that is kept only as its moment. Eigenvalues
    below `rtol * lambda_max` count as zero: a moment from which some keys were subtracted
    keeps the rounding of the activations (~1e-7 relative in float32) along their directions,
    which must not count as retain keys to hold; pass ~10x the activations' machine epsilon."""
    _check_square(G, "a key moment")
    evals, evecs = torch.linalg.eigh(G.detach().to(_F64))
    keep = evals > rtol * evals[-1].clamp(min=0) if evals[-1] > 0 else torch.zeros_like(evals, dtype=torch.bool)
    return evecs[:, keep] * evals[keep].sqrt()


def solve_exact(
    W: Tensor, K_f: Tensor, V_f: Tensor, K_r: Tensor | None = None, rtol: float = 1e-10
) -> Tensor:
    """Minimum-norm edit that holds the retain keys fixed: `dW = (V_f - W K_f) ((I - P_r) K_f)^+`.

    `P_r` projects on span(K_r). Because every row of `dW` lies in the orthogonal complement of
    span(K_r), `W' K_r == W K_r` exactly; when the projected forget keys have full column rank,
    `W' K_f == V_f` exactly (otherwise it is the least-squares fit). Singular values of the
    projected keys below `rtol * sigma_max(K_f)` are treated as zero, so forget keys that lie in
    the retain span are left alone instead of producing a huge edit.
    """
    W, K, V = _check_edit(W, K_f, V_f)
    R = V - W @ K
    K_free = K
    if K_r is not None:
        if K_r.dim() != 2 or K_r.shape[0] != W.shape[1]:
            raise ValueError(
                f"retain keys must be (d_in={W.shape[1]}, n_r), got shape {tuple(K_r.shape)}"
            )
        Q = retain_basis(_as_f64(K_r, W.device), rtol)
        K_free = K - Q @ (Q.T @ K)
    scale = torch.linalg.matrix_norm(K, ord=2)
    if torch.linalg.matrix_norm(K_free, ord=2) <= rtol * scale:
        raise ValueError(
            "the forget keys lie in the span of the retain keys: no edit can move them without "
            "moving retain outputs; use fewer retain keys or the ridge/lowrank solver"
        )
    return R @ torch.linalg.pinv(K_free, atol=float(rtol * scale))


def solve_ridge(
    W: Tensor, K_f: Tensor, V_f: Tensor, C: Tensor | None = None, lam: float = 1.0
) -> Tensor:
    """MEMIT's covariance-regularised least squares: `dW = R K_f^T (lam C + K_f K_f^T)^{-1}`.

    `R = V_f - W K_f`. It minimises `||dW K_f - R||^2 + lam * tr(dW C dW^T)`: moving the output
    along a key direction costs in proportion to how much retain energy `C` (e.g.
    `second_moment(K_r)`) puts there. `C = None` means the identity (plain ridge). Costs one
    d_in x d_in Cholesky solve per call; `lam C + K_f K_f^T` must be positive definite.
    """
    W, K, V = _check_edit(W, K_f, V_f)
    _check_lam(lam)
    d_in = W.shape[1]
    if C is None:
        C64 = torch.eye(d_in, dtype=_F64, device=W.device)
    else:
        if tuple(C.shape) != (d_in, d_in):
            raise ValueError(f"C must be (d_in, d_in) = ({d_in}, {d_in}), got shape {tuple(C.shape)}")
        C64 = _as_f64(C, W.device)
    R = V - W @ K
    A = lam * C64 + K @ K.T
    L, info = torch.linalg.cholesky_ex(A)
    if info != 0:
        raise ValueError(
            "lam*C + K_f K_f^T is not positive definite: the regulariser C is singular on the "
            "directions the forget keys leave out; add an isotropic floor to C"
        )
    if K.shape[1] <= R.shape[0]:  # R (A^{-1} K)^T: n right-hand sides, rank <= n by construction
        return R @ torch.cholesky_solve(K, L).T
    return torch.cholesky_solve((R @ K.T).T, L).T  # (A^{-1} K R^T)^T: d_out right-hand sides, for many keys


def stiffen_top_directions(C: Tensor, rank: int, weight: float) -> Tensor:
    """`C + weight * lambda_max(C) * U U^T`, U the top-`rank` eigenvectors of the symmetric `C`.

    As a ridge hold it keeps an edit (softly) out of the directions its statistics use most, as
    AlphaEdit projects edits onto the null space of the keys of preserved knowledge: a long run
    of edits can no longer pile up along the directions every question shares. One O(d^3) eigh.
    """
    _check_square(C, "C")
    _check_rank(rank, C.shape[0])
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight}")
    evals, evecs = torch.linalg.eigh(C.detach().to(_F64))
    top = evecs[:, -rank:]
    return C.to(_F64) + (weight * float(evals[-1].clamp(min=0))) * (top @ top.T)


@dataclass(frozen=True)
class RidgeHold:
    """The hold `lam C` of `solve_ridge`, inverted once (`inverse = (lam C)^{-1}`).

    Every edit against the same hold (the same retain statistics and edits in force) then
    solves by the push-through identity in O(d^2 n + n^3) (`ridge_held_update`) instead of
    factoring a fresh d x d matrix; building it costs a Cholesky and its inverse, O(d^3).
    The explicit inverse turns the solve's d^2 n work into one matrix product, which runs
    faster than two triangular solves; a hold's condition number (~1e5 on the lab model, with
    its covariance floor) leaves it accurate to ~1e-11 in float64.
    """

    inverse: Tensor

    @classmethod
    def of(cls, C: Tensor, lam: float = 1.0) -> RidgeHold:
        """Invert `lam C`; `C` (symmetric, d x d) must be positive definite."""
        _check_lam(lam)
        _check_square(C, "C")
        L, info = torch.linalg.cholesky_ex(lam * C.detach().to(_F64))
        if info != 0:
            raise ValueError("the hold C is not positive definite: add an isotropic floor to C")
        return cls(torch.cholesky_inverse(L))

    @property
    def dim(self) -> int:
        return self.inverse.shape[0]


def solve_ridge_held(W: Tensor, K_f: Tensor, V_f: Tensor, hold: RidgeHold) -> Tensor:
    """`solve_ridge(W, K_f, V_f, C, lam)` for `hold = RidgeHold.of(C, lam)`, without a d x d factorisation."""
    W, K, V = _check_edit(W, K_f, V_f)
    if hold.dim != W.shape[1]:
        raise ValueError(f"the hold is {hold.dim}-dimensional but W takes {W.shape[1]}-dim keys")
    return ridge_held_update(K, V - W @ K, hold)


def ridge_held_update(K_f: Tensor, R: Tensor, hold: RidgeHold, released: Tensor | None = None) -> Tensor:
    """`solve_ridge_held`'s edit from the residual `R = V_f - W K_f` (d_out, n) itself, on the
    hold less `released released^T`.

    A caller that built its targets as `W K_f + R` (STAMP) passes `R` and skips a d_out x d_in x n
    product. `released` (d_in, m) are keys the hold lets go of for this edit (STAMP: forget
    prompts that are also in the retain buffer, whose keys cannot be both held and forgotten):
    the hold's inverse stays the one for every edit, and the m keys join the n x n system.
    With `M = hold^{-1}`, `U = [K_f, released]` and `D = diag(I_n, -I_m)`, Woodbury gives
    `K_f^T (hold - released released^T + K_f K_f^T)^{-1} = [(D + U^T M U)^{-1}]_{:n} (M U)^T`,
    so `dW = [R, 0] (D + U^T M U)^{-1} (M U)^T`: one d x d x (n + m) product and an
    (n + m) x (n + m) solve (a Cholesky when nothing is released), rank <= n.
    """
    if K_f.dim() != 2 or K_f.shape[0] != hold.dim or K_f.shape[1] == 0:
        raise ValueError(f"forget keys must be (d_in={hold.dim}, n >= 1), got shape {tuple(K_f.shape)}")
    if R.dim() != 2 or R.shape[1] != K_f.shape[1]:
        raise ValueError(f"the residual must be (d_out, n={K_f.shape[1]}), got shape {tuple(R.shape)}")
    if released is not None and (released.dim() != 2 or released.shape[0] != hold.dim):
        raise ValueError(f"released keys must be (d_in={hold.dim}, m), got shape {tuple(released.shape)}")
    M = hold.inverse
    U = _as_f64(K_f, M.device)
    R = _as_f64(R, M.device)
    n = U.shape[1]
    if released is not None and released.shape[1]:
        U = torch.cat([U, _as_f64(released, M.device)], dim=1)
    Z = M @ U  # hold^{-1} U
    B = U.T @ Z
    if not (torch.isfinite(B).all() and torch.isfinite(R).all()):  # B is small; a NaN or inf in U reaches it
        raise ValueError("forget keys, released keys or residual contain NaN or infinity")
    B.diagonal()[:n].add_(1.0)
    if U.shape[1] == n:
        S = torch.cholesky_solve(R.T, torch.linalg.cholesky(B)).T  # R (I + K^T M K)^{-1}
    else:
        B.diagonal()[n:].sub_(1.0)
        S = torch.linalg.solve(B, torch.cat([R, R.new_zeros(R.shape[0], U.shape[1] - n)], dim=1).T).T
    return S @ Z.T


@dataclass(frozen=True)
class LowRankCovariance:
    """A key covariance approximated as `C ~ U diag(eigenvalues) U^T + eps I`.

    `basis` U is (d, r) with orthonormal columns (the top-r eigenvectors), `eigenvalues` (r,)
    are >= 0 and `eps` > 0 stands for the discarded spectrum. Build it once per layer
    (`from_keys` / `from_second_moment`) and reuse it across edits: each `solve_lowrank` call
    then costs O(r n d + n^3) and never forms a d x d matrix.
    """

    basis: Tensor
    eigenvalues: Tensor
    eps: float

    def __post_init__(self) -> None:
        if self.basis.dim() != 2 or self.eigenvalues.shape != (self.basis.shape[1],):
            raise ValueError(
                f"basis (d, r) and eigenvalues (r,) disagree: {tuple(self.basis.shape)} vs "
                f"{tuple(self.eigenvalues.shape)}"
            )
        if not self.eps > 0:
            raise ValueError(f"eps must be > 0 so the covariance is invertible, got {self.eps}")

    @property
    def dim(self) -> int:
        return self.basis.shape[0]

    @property
    def rank(self) -> int:
        return self.basis.shape[1]

    @classmethod
    def from_second_moment(
        cls, C: Tensor, rank: int, eps: float | None = None, floor: float = 1e-6
    ) -> LowRankCovariance:
        """Top-`rank` eigenpairs of the symmetric `C` (one O(d^3) eigh, done once).

        `eps=None` sets eps to the mean of the discarded eigenvalues (the isotropic part of the
        tail), but never below `floor * trace(C) / d`, which keeps the factor invertible when
        `rank` already covers the whole spectrum.
        """
        _check_square(C, "C")
        d = C.shape[0]
        _check_rank(rank, d)
        evals, evecs = torch.linalg.eigh(C.detach().to(_F64))
        evals = evals.flip(0).clamp(min=0)
        evecs = evecs.flip(1)
        return cls._build(evecs[:, :rank], evals[:rank], evals[rank:].sum(), d, eps, floor)

    @classmethod
    def from_keys(
        cls, K: Tensor, rank: int, eps: float | None = None, floor: float = 1e-6
    ) -> LowRankCovariance:
        """Factorise `second_moment(K)` from the keys (d, n), via a thin SVD when n <= d.

        With fewer keys than `rank` the basis keeps only the n directions the keys span (the
        rest of the space is covered by `eps`), so `rank` may come out below the request.
        """
        if K.dim() != 2 or K.shape[1] == 0:
            raise ValueError(f"keys must be a non-empty (d, n) matrix, got shape {tuple(K.shape)}")
        d, n = K.shape
        if n > d:
            return cls.from_second_moment(second_moment(K), rank, eps, floor)
        _check_rank(rank, d)
        U, S, _ = torch.linalg.svd(K.detach().to(_F64), full_matrices=False)
        evals = S**2 / n
        return cls._build(U[:, :rank], evals[:rank], evals[rank:].sum(), d, eps, floor)

    @classmethod
    def _build(
        cls, U: Tensor, top: Tensor, tail_sum: Tensor, d: int, eps: float | None, floor: float
    ) -> LowRankCovariance:
        if eps is None:
            r = U.shape[1]
            trace = float(top.sum() + tail_sum)
            tail_mean = float(tail_sum) / (d - r) if d > r else 0.0
            eps = max(tail_mean, floor * trace / d)
            if eps <= 0:
                raise ValueError(
                    "eps came out 0 (all-zero keys, or rank covering the whole spectrum with "
                    "floor=0): pass floor > 0 or an explicit eps"
                )
        return cls(U.contiguous(), top.contiguous(), float(eps))

    def dense(self) -> Tensor:
        """The d x d matrix `U diag(eigenvalues) U^T + eps I` (for tests and small d only)."""
        U = self.basis
        return (U * self.eigenvalues) @ U.T + self.eps * torch.eye(self.dim, dtype=_F64, device=U.device)

    def solve(self, K: Tensor) -> Tensor:
        """`C^{-1} K` in O(r n d), with `C^{-1} = U diag(1/(eigenvalues + eps)) U^T + (I - U U^T)/eps`."""
        U = self.basis.to(K.device)
        coeff = U.T @ K
        inside = U @ (coeff / (self.eigenvalues.to(K.device) + self.eps).unsqueeze(1))
        return inside + (K - U @ coeff) / self.eps


def _check_rank(rank: int, d: int) -> None:
    if not 1 <= rank <= d:
        raise ValueError(f"rank must be in [1, {d}] for {d}-dimensional keys, got {rank}")


def solve_lowrank(
    W: Tensor, K_f: Tensor, V_f: Tensor, cov: LowRankCovariance, lam: float = 1.0
) -> Tensor:
    """`solve_ridge` with `C` replaced by the factorisation `cov`, as an n x n solve.

    With `G = lam C` (C = U Lambda U^T + eps I, inverted in closed form by `cov.solve`, the
    Woodbury identity for an orthonormal U), the push-through identity gives
    `K^T (G + K K^T)^{-1} = (I_n + K^T G^{-1} K)^{-1} K^T G^{-1}`, so
    `dW = R (I_n + K^T G^{-1} K)^{-1} (G^{-1} K)^T`. Per call: O(r n d) for `G^{-1} K`,
    O(n^2 d + n^3) for the small system, plus the (d_out x d_in) write of `dW`. Equals
    `solve_ridge(W, K_f, V_f, cov.dense(), lam)`, and the full-covariance ridge when `rank`
    covers the span of the keys that built `cov`.
    """
    W, K, V = _check_edit(W, K_f, V_f)
    _check_lam(lam)
    if cov.dim != W.shape[1]:
        raise ValueError(f"covariance is {cov.dim}-dimensional but W takes {W.shape[1]}-dim keys")
    GinvK = cov.solve(K) / lam  # (d_in, n)
    S = torch.eye(K.shape[1], dtype=_F64, device=W.device) + K.T @ GinvK
    X = torch.linalg.solve(S, GinvK.T).T  # GinvK S^{-1}; S is symmetric
    return (V - W @ K) @ X.T

"""The closed-form STAMP solvers on random float64 matrices with fixed seeds."""

from __future__ import annotations

import pytest
import torch

from obliviate.methods.stamp_solvers import (
    LowRankCovariance,
    RidgeHold,
    moment_factor,
    retain_basis,
    ridge_held_update,
    second_moment,
    solve_exact,
    solve_lowrank,
    solve_ridge,
    solve_ridge_held,
    stiffen_top_directions,
)

D_OUT, D_IN = 12, 40


def _problem(n_f: int = 3, n_r: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D_OUT, D_IN, generator=g, dtype=torch.float64)
    K_f = torch.randn(D_IN, n_f, generator=g, dtype=torch.float64)
    V_f = torch.randn(D_OUT, n_f, generator=g, dtype=torch.float64)
    K_r = torch.randn(D_IN, n_r, generator=g, dtype=torch.float64)
    return W, K_f, V_f, K_r


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def test_second_moment_and_retain_basis():
    K = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(second_moment(K), torch.tensor([[5 / 3, 0.0], [0.0, 0.0]], dtype=torch.float64))
    Q = retain_basis(K)
    assert Q.shape == (2, 1)  # the zero row adds no direction
    assert torch.allclose(Q @ Q.T, torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64))
    assert retain_basis(torch.zeros(4, 3)).shape == (4, 0)


def test_moment_factor_spans_the_keys_and_the_exact_edit_is_the_same():
    W, K_f, V_f, K_r = _problem()
    G = K_r @ K_r.T
    F = moment_factor(G)
    assert F.shape == (D_IN, K_r.shape[1])  # 10 keys in 40 dimensions: rank 10, rounding left out
    assert _rel(F @ F.T, G) < 1e-10
    assert _rel(solve_exact(W, K_f, V_f, F), solve_exact(W, K_f, V_f, K_r)) < 1e-8
    assert moment_factor(torch.zeros(4, 4)).shape == (4, 0)
    with pytest.raises(ValueError, match="square"):
        moment_factor(K_r)


def test_exact_maps_forget_keys_and_holds_retain_keys():
    W, K_f, V_f, K_r = _problem()
    dW = solve_exact(W, K_f, V_f, K_r)
    W2 = W + dW
    assert torch.allclose(W2 @ K_f, V_f, atol=1e-10)
    assert torch.allclose(W2 @ K_r, W @ K_r, atol=1e-10)
    assert torch.linalg.matrix_rank(dW) <= K_f.shape[1]


def test_exact_without_retain_is_the_minimum_norm_pseudoinverse_edit():
    W, K_f, V_f, _ = _problem(n_f=2)
    dW = solve_exact(W, K_f, V_f)
    assert torch.allclose(dW, (V_f - W @ K_f) @ torch.linalg.pinv(K_f), atol=1e-12)
    assert torch.allclose((W + dW) @ K_f, V_f, atol=1e-10)


def test_exact_refuses_forget_keys_inside_the_retain_span():
    W, K_f, V_f, K_r = _problem(n_f=2)
    with pytest.raises(ValueError, match="span of the retain keys"):
        solve_exact(W, K_r[:, :2] @ torch.randn(2, 2, dtype=torch.float64), V_f, K_r)


def test_exact_with_a_collinear_forget_key_is_the_least_squares_fit():
    W, K_f, V_f, _ = _problem(n_f=2)
    K = torch.cat([K_f, 2 * K_f[:, :1]], dim=1)  # third key = 2 * first key
    V = torch.cat([V_f, 2 * V_f[:, :1]], dim=1)  # consistent target: still exactly reachable
    dW = solve_exact(W, K, V)
    assert torch.allclose((W + dW) @ K, V, atol=1e-10)
    assert torch.linalg.matrix_rank(dW) <= 2


def test_ridge_approaches_the_pseudoinverse_edit_as_lam_vanishes():
    W, K_f, V_f, _ = _problem()
    dW = solve_ridge(W, K_f, V_f, lam=1e-7)
    assert _rel((W + dW) @ K_f, V_f) < 1e-6
    assert torch.allclose(dW, solve_exact(W, K_f, V_f), atol=1e-5)
    assert torch.linalg.matrix_rank(dW) <= K_f.shape[1]


def test_ridge_matches_its_closed_form_and_shrinks_with_lam():
    W, K_f, V_f, K_r = _problem()
    C = second_moment(K_r) + 0.1 * torch.eye(D_IN, dtype=torch.float64)
    dW = solve_ridge(W, K_f, V_f, C, lam=2.0)
    expected = (V_f - W @ K_f) @ K_f.T @ torch.linalg.inv(2.0 * C + K_f @ K_f.T)
    assert torch.allclose(dW, expected, atol=1e-10)
    assert torch.linalg.norm(solve_ridge(W, K_f, V_f, C, lam=200.0)) < torch.linalg.norm(dW)


def test_ridge_with_more_keys_than_outputs_matches_its_closed_form():
    """With n > d_out the solve runs on d_out right-hand sides; the result is the same edit."""
    W, K_f, V_f, K_r = _problem(n_f=30)
    C = second_moment(K_r) + 0.1 * torch.eye(D_IN, dtype=torch.float64)
    dW = solve_ridge(W, K_f, V_f, C, lam=0.5)
    expected = (V_f - W @ K_f) @ K_f.T @ torch.linalg.inv(0.5 * C + K_f @ K_f.T)
    assert K_f.shape[1] > D_OUT and torch.allclose(dW, expected, atol=1e-10)


def test_ridge_with_a_large_retain_penalty_preserves_retain_keys_and_maps_forget_keys():
    W, K_f, V_f, K_r = _problem(n_f=3, n_r=10)
    # C is large on span(K_r) and tiny elsewhere: lam * C >> K_f K_f^T on the retain span only.
    C = second_moment(K_r) + 1e-9 * torch.eye(D_IN, dtype=torch.float64)
    dW = solve_ridge(W, K_f, V_f, C, lam=1e4)
    R = V_f - W @ K_f
    assert _rel((W + dW) @ K_f, V_f) < 1e-3
    retain_move = torch.linalg.norm(dW @ K_r) / torch.linalg.norm(R)
    assert retain_move < 1e-2
    plain = solve_ridge(W, K_f, V_f, lam=1e-6)  # no retain knowledge: moves retain outputs a lot
    assert torch.linalg.norm(plain @ K_r) / torch.linalg.norm(R) > 0.3


@pytest.mark.parametrize("n_f", [1, 4, 30])
def test_held_ridge_equals_ridge(n_f):
    W, K_f, V_f, K_r = _problem(n_f=n_f, n_r=25)
    C = second_moment(K_r) + 1e-3 * torch.eye(D_IN, dtype=torch.float64)
    hold = RidgeHold.of(C, lam=3.0)
    dW = solve_ridge_held(W, K_f, V_f, hold)
    assert _rel(dW, solve_ridge(W, K_f, V_f, C, lam=3.0)) < 1e-10
    assert _rel(ridge_held_update(K_f, V_f - W @ K_f, hold), dW) < 1e-12  # the residual form: the same edit
    assert torch.linalg.matrix_rank(dW) <= n_f
    assert torch.allclose(hold.inverse @ (3.0 * C), torch.eye(D_IN, dtype=torch.float64), atol=1e-10)


@pytest.mark.parametrize("n_f", [1, 4, 30])
def test_released_keys_leave_the_hold_for_one_edit(n_f):
    W, K_f, V_f, K_r = _problem(n_f=n_f, n_r=25)
    released = 3.0 * K_f[:, :1]  # the first forget key is also in the hold (a retain key), with weight 9
    C = K_r @ K_r.T + released @ released.T + 1e-3 * torch.eye(D_IN, dtype=torch.float64)
    hold = RidgeHold.of(C)
    dW = ridge_held_update(K_f, V_f - W @ K_f, hold, released)
    assert _rel(dW, solve_ridge(W, K_f, V_f, C - released @ released.T, lam=1.0)) < 1e-9
    assert torch.linalg.matrix_rank(dW) <= n_f

    def miss(edit):  # how far the first forget key lands from its target
        return float(torch.linalg.norm((W + edit) @ K_f[:, 0] - V_f[:, 0]))

    held = solve_ridge_held(W, K_f, V_f, hold)
    assert miss(dW) < 0.5 * miss(held)  # released, it moves to its target; held, it does not
    assert _rel(ridge_held_update(K_f, V_f - W @ K_f, hold, released[:, :0]), held) < 1e-12


def test_stiffening_raises_only_the_top_eigenvalues_and_keeps_edits_out_of_them():
    W, K_f, V_f, K_r = _problem(n_f=4, n_r=25)
    C = second_moment(K_r) + 1e-3 * torch.eye(D_IN, dtype=torch.float64)
    evals, evecs = torch.linalg.eigh(C)
    stiff = stiffen_top_directions(C, rank=5, weight=10.0)
    lifted = evals.clone()
    lifted[-5:] += 10.0 * evals[-1]
    assert torch.allclose(torch.linalg.eigvalsh(stiff), lifted.sort().values, rtol=1e-9, atol=1e-12)
    top = evecs[:, -5:]
    plain, held = solve_ridge(W, K_f, V_f, C, lam=0.01), solve_ridge(W, K_f, V_f, stiff, lam=0.01)
    assert torch.linalg.norm(held @ top) < 0.2 * torch.linalg.norm(plain @ top)
    assert torch.equal(stiffen_top_directions(C, rank=5, weight=0.0), C)


def test_lowrank_equals_full_ridge_when_the_rank_covers_the_keys():
    W, K_f, V_f, K_r = _problem(n_f=4, n_r=10)
    eps = 1e-3
    cov = LowRankCovariance.from_keys(K_r, rank=10, eps=eps)
    full = solve_ridge(W, K_f, V_f, second_moment(K_r) + eps * torch.eye(D_IN, dtype=torch.float64), lam=5.0)
    assert torch.allclose(solve_lowrank(W, K_f, V_f, cov, lam=5.0), full, atol=1e-9)
    assert torch.allclose(cov.dense(), second_moment(K_r) + eps * torch.eye(D_IN, dtype=torch.float64), atol=1e-12)


def test_lowrank_equals_ridge_on_its_own_truncated_covariance():
    W, K_f, V_f, _ = _problem(n_f=5)
    keys = torch.randn(D_IN, 200, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    cov = LowRankCovariance.from_keys(keys, rank=6)
    assert cov.rank == 6 and cov.eps > 0
    dW = solve_lowrank(W, K_f, V_f, cov, lam=0.5)
    assert torch.allclose(dW, solve_ridge(W, K_f, V_f, cov.dense(), lam=0.5), atol=1e-9)
    assert torch.linalg.matrix_rank(dW) <= K_f.shape[1]


def test_lowrank_factor_from_keys_matches_eigendecomposition_and_keeps_the_trace():
    keys = torch.randn(D_IN, 30, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    C = second_moment(keys)
    via_svd = LowRankCovariance.from_keys(keys, rank=8)  # n <= d: thin SVD path
    via_eigh = LowRankCovariance.from_second_moment(C, rank=8)
    assert torch.allclose(via_svd.eigenvalues, via_eigh.eigenvalues, atol=1e-10)
    assert via_svd.eps == pytest.approx(via_eigh.eps, rel=1e-9)
    assert torch.allclose(via_svd.basis @ via_svd.basis.T, via_eigh.basis @ via_eigh.basis.T, atol=1e-8)
    # eps is the mean of the discarded eigenvalues, so the trace is kept
    assert float(via_eigh.eigenvalues.sum()) + (D_IN - 8) * via_eigh.eps == pytest.approx(float(C.trace()))
    assert float(via_eigh.dense().trace()) == pytest.approx(float(C.trace()) + 8 * via_eigh.eps)


def test_lowrank_full_rank_uses_the_floor():
    keys = torch.randn(D_IN, 100, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    cov = LowRankCovariance.from_keys(keys, rank=D_IN, floor=1e-4)
    C = second_moment(keys)
    assert cov.eps == pytest.approx(1e-4 * float(C.trace()) / D_IN)
    assert torch.allclose(cov.dense(), C + cov.eps * torch.eye(D_IN, dtype=torch.float64), atol=1e-10)


def test_solvers_accept_float32_inputs_and_return_float64():
    W, K_f, V_f, K_r = (t.float() for t in _problem())
    for dW in (
        solve_exact(W, K_f, V_f, K_r),
        solve_ridge(W, K_f, V_f, lam=1.0),
        solve_ridge_held(W, K_f, V_f, RidgeHold.of(torch.eye(D_IN))),
        solve_lowrank(W, K_f, V_f, LowRankCovariance.from_keys(K_r, 4), lam=1.0),
    ):
        assert dW.dtype == torch.float64 and dW.shape == W.shape


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda W, K, V, R: solve_exact(W[0], K, V), "W must be"),
        (lambda W, K, V, R: solve_exact(W, K[:-1], V), "forget keys must be"),
        (lambda W, K, V, R: solve_exact(W, K[:, :0], V[:, :0]), "no forget keys"),
        (lambda W, K, V, R: solve_exact(W, K, V[:, :1]), "targets must be"),
        (lambda W, K, V, R: solve_exact(W, K, V, R[:-1]), "retain keys must be"),
        (lambda W, K, V, R: solve_ridge(W, K, V, torch.eye(3)), "C must be"),
        (lambda W, K, V, R: solve_ridge(W, K, V, lam=0.0), "lam must be"),
        (lambda W, K, V, R: solve_ridge(W, K, V, second_moment(R)[:, :] * 0, lam=1.0), "not positive definite"),
        (lambda W, K, V, R: solve_ridge(W, K * float("nan"), V), "NaN"),
        (lambda W, K, V, R: RidgeHold.of(second_moment(R), lam=1.0), "not positive definite"),
        (lambda W, K, V, R: RidgeHold.of(R, lam=1.0), "square"),
        (lambda W, K, V, R: stiffen_top_directions(R, 1, 1.0), "square"),
        (lambda W, K, V, R: stiffen_top_directions(torch.eye(3), 4, 1.0), "rank must be"),
        (lambda W, K, V, R: stiffen_top_directions(torch.eye(3), 1, -1.0), "weight must be"),
        (lambda W, K, V, R: RidgeHold.of(torch.eye(3), lam=-1.0), "lam must be"),
        (lambda W, K, V, R: solve_ridge_held(W, K, V, RidgeHold.of(torch.eye(3))), "hold is 3-dimensional"),
        (lambda W, K, V, R: ridge_held_update(K[:-1], V, RidgeHold.of(torch.eye(D_IN))), "forget keys must be"),
        (lambda W, K, V, R: ridge_held_update(K, V[:, :1], RidgeHold.of(torch.eye(D_IN))), "residual must be"),
        (lambda W, K, V, R: ridge_held_update(K, V * float("inf"), RidgeHold.of(torch.eye(D_IN))), "NaN or infinity"),
        (lambda W, K, V, R: ridge_held_update(K, V, RidgeHold.of(torch.eye(D_IN)), R[:-1]), "released keys must be"),
        (lambda W, K, V, R: LowRankCovariance.from_keys(R, rank=0), "rank must be"),
        (lambda W, K, V, R: LowRankCovariance.from_keys(R, rank=D_IN + 1), "rank must be"),
        (lambda W, K, V, R: LowRankCovariance.from_keys(R[:-2], 3) and solve_lowrank(
            W, K, V, LowRankCovariance.from_keys(R[:-2], 3)), "covariance is"),
        (lambda W, K, V, R: LowRankCovariance(R[:, :2], torch.ones(3), 1.0), "disagree"),
        (lambda W, K, V, R: LowRankCovariance(R[:, :2], torch.ones(2), 0.0), "eps must be"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    W, K_f, V_f, K_r = _problem()
    with pytest.raises(ValueError, match=message):
        call(W, K_f, V_f, K_r)

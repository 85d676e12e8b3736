"""Every unlearning loss against a value computed by hand on a tiny input."""

from __future__ import annotations

import math

import pytest
import torch

from obliviate.methods import losses

LN2, LN3 = math.log(2.0), math.log(3.0)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


@pytest.fixture
def two_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """Vocab 2. Row 0 scores labels 0 then 1; row 1 scores only its last token (label 1).

    logits [0,0] give p = (1/2, 1/2); logits [ln3, 0] give p = (3/4, 1/4).
    """
    logits = torch.tensor(
        [
            [[0.0, 0.0], [LN3, 0.0], [5.0, -5.0]],
            [[9.0, 1.0], [LN3, 0.0], [5.0, -5.0]],
        ]
    )
    labels = torch.tensor([[-100, 0, 1], [-100, -100, 1]])
    return logits, labels


def test_token_log_probs_score_only_answer_tokens(two_rows):
    logits, labels = two_rows
    logp, mask = losses.token_log_probs(logits, labels)
    assert mask.tolist() == [[True, True], [False, True]]
    expected = torch.tensor([[math.log(0.5), math.log(0.25)], [0.0, math.log(0.25)]])
    assert torch.allclose(logp, expected, atol=1e-6)


def test_sequence_and_mean_nll(two_rows):
    logits, labels = two_rows
    # row 0: -ln(1/2) - ln(1/4) = ln 8 over 2 tokens; row 1: ln 4 over 1 token
    assert torch.allclose(losses.sequence_nll(logits, labels), torch.tensor([math.log(8), math.log(4)]))
    assert torch.allclose(losses.mean_nll(logits, labels), torch.tensor([math.log(8) / 2, math.log(4)]))


def test_mean_nll_of_an_empty_answer_is_zero_not_nan():
    logits = torch.zeros(1, 3, 2)
    assert losses.mean_nll(logits, torch.full((1, 3), -100)).item() == 0.0


def test_answer_mask_marks_positions_that_predict_answers():
    labels = torch.tensor([[-100, -100, 7, 8, -100]])
    assert losses.answer_mask(labels).tolist() == [[False, True, True, False, False]]


def test_graddiff_loss():
    # -gamma * mean(1, 3) + alpha * mean(2) = -0.5 * 2 + 3 * 2
    value = losses.graddiff_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0]), gamma=0.5, alpha=3.0)
    assert value.item() == pytest.approx(5.0)


def test_npo_loss():
    # logp - ref = -1, beta 0.5: -(2/0.5) * log sigmoid(0.5)
    value = losses.npo_loss(torch.tensor([-2.0]), torch.tensor([-1.0]), beta=0.5)
    assert value.item() == pytest.approx(-4 * log_sigmoid(0.5))


def test_npo_loss_at_the_reference_is_two_log_two_over_beta():
    value = losses.npo_loss(torch.tensor([-3.0, -7.0]), torch.tensor([-3.0, -7.0]), beta=0.1)
    assert value.item() == pytest.approx(20 * LN2, rel=1e-6)


def test_simnpo_loss():
    # mean NLL 2, delta 0.5, beta 2: -(2/2) * log sigmoid(2 * 1.5)
    value = losses.simnpo_loss(torch.tensor([2.0]), beta=2.0, delta=0.5)
    assert value.item() == pytest.approx(-log_sigmoid(3.0))


def test_dpo_loss():
    # win ratio -1 - (-2) = 1, lose ratio -3 - (-1) = -2, margin 3, beta 1: -2 log sigmoid(3)
    value = losses.dpo_loss(
        torch.tensor([-1.0]), torch.tensor([-2.0]), torch.tensor([-3.0]), torch.tensor([-1.0]), beta=1.0
    )
    assert value.item() == pytest.approx(-2 * log_sigmoid(3.0))


def test_wga_loss_and_its_detached_weights():
    token_logp = torch.tensor([[math.log(0.5), math.log(0.25), 0.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    value = losses.wga_loss(token_logp, mask, beta=1.0)
    # mean of p * log p over the two scored tokens
    assert value.item() == pytest.approx((0.5 * math.log(0.5) + 0.25 * math.log(0.25)) / 2)
    value.backward()
    # the weights are constants: d/d logp = p^beta / (number of scored tokens)
    assert torch.allclose(token_logp.grad, torch.tensor([[0.25, 0.125, 0.0]]))
    assert torch.allclose(losses.wga_weights(token_logp, beta=2.0)[0, :2], torch.tensor([0.25, 0.0625]))


def test_kl_to_reference():
    # reference p = (1/2, 1/2), model q = (3/4, 1/4): KL(p||q) = 0.5 ln(2/3) + 0.5 ln 2 = 0.5 ln(4/3)
    logits = torch.tensor([[[LN3, 0.0], [0.0, 8.0]]])
    ref_logits = torch.tensor([[[0.0, 0.0], [8.0, 0.0]]])
    value = losses.kl_to_reference(logits, ref_logits, torch.tensor([[True, False]]))
    assert value.item() == pytest.approx(0.5 * math.log(4 / 3))
    assert losses.kl_to_reference(ref_logits, ref_logits, torch.tensor([[True, True]])).item() == pytest.approx(0.0)


def test_activation_mse_ignores_masked_positions():
    activations = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    value = losses.activation_mse(activations, torch.zeros(2), torch.tensor([[True, False]]))
    assert value.item() == pytest.approx((1 + 4) / 2)


def test_rmu_control_vector_has_the_steering_norm_and_is_reproducible():
    vector = losses.rmu_control_vector(16, coeff=6.5, seed=3)
    assert vector.norm().item() == pytest.approx(6.5)
    assert (vector >= 0).all()
    assert torch.equal(vector, losses.rmu_control_vector(16, coeff=6.5, seed=3))
    assert not torch.equal(vector, losses.rmu_control_vector(16, coeff=6.5, seed=4))


def test_refusal_direction_and_lunar_target():
    refusal = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    forget = torch.tensor([[0.0, 1.0]])
    direction = losses.refusal_direction(refusal, forget)
    assert direction.dtype == torch.float64
    assert direction.tolist() == [2.0, -1.0]
    target = losses.lunar_target(torch.tensor([[0.5, 0.5]]), direction, coeff=2.0)
    assert target.tolist() == [[4.5, -1.5]]

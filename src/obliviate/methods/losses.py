"""The loss pieces every training-based unlearning method is built from.

Small pure functions on logits, labels, log-probabilities and activations, so each method file
is a few lines of composition and each formula is unit-tested once. Conventions:

- `labels` are the causal-LM labels (`-100` on prompt and padding); position t of the logits
  predicts label t+1, as in Hugging Face models.
- "NLL" is the negative log-likelihood of the answer tokens; a method *minimises* its loss, so
  gradient ascent on the forget set appears as `-nll`.
- Log-softmax is taken in float32 at least, whatever the model's compute dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each next-token label, (B, T-1), 0 where unscored, and the scored mask."""
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    nll = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return -nll, mask


def sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL of each sequence's answer, summed over its tokens: (B,) = -log P(y | x)."""
    logp, _ = token_log_probs(logits, labels)
    return -logp.sum(dim=1)


def mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """NLL of each sequence's answer averaged over its tokens: (B,); 0 for an empty answer."""
    logp, mask = token_log_probs(logits, labels)
    return -logp.sum(dim=1) / mask.sum(dim=1).clamp(min=1)


def answer_mask(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) mask of the logit positions that predict an answer token (aligned with `logits`)."""
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return mask


def graddiff_loss(
    forget_nll: torch.Tensor, retain_nll: torch.Tensor, gamma: float = 1.0, alpha: float = 1.0
) -> torch.Tensor:
    """GradDiff: ascend the forget NLL, descend the retain NLL: -gamma*mean(forget) + alpha*mean(retain)."""
    return -gamma * forget_nll.mean() + alpha * retain_nll.mean()


def npo_loss(logp: torch.Tensor, ref_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """NPO on sequence log-likelihoods: -(2/beta) * mean log sigmoid(-beta * (logp - ref_logp)).

    Equals 2/beta*log 2 at the reference; tends to gradient ascent (scaled) as beta -> 0 and,
    unlike GA, saturates once the forget answer is much less likely than under the reference.
    """
    return -(2.0 / beta) * F.logsigmoid(-beta * (logp - ref_logp)).mean()


def simnpo_loss(mean_answer_nll: torch.Tensor, beta: float, delta: float = 0.0) -> torch.Tensor:
    """SimNPO, NPO without a reference on length-normalised NLL:
    -(2/beta) * mean log sigmoid(beta * (nll/|y| - delta))."""
    return -(2.0 / beta) * F.logsigmoid(beta * (mean_answer_nll - delta)).mean()


def dpo_loss(
    win_logp: torch.Tensor,
    win_ref_logp: torch.Tensor,
    lose_logp: torch.Tensor,
    lose_ref_logp: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO on sequence log-likelihoods, scaled by 2/beta like NPO (which is DPO without a winner)."""
    margin = (win_logp - win_ref_logp) - (lose_logp - lose_ref_logp)
    return -(2.0 / beta) * F.logsigmoid(beta * margin).mean()


def wga_weights(token_logp: torch.Tensor, beta: float) -> torch.Tensor:
    """Weighted gradient ascent's per-token weights p(y_t)^beta, detached: confident tokens count most."""
    return torch.exp(beta * token_logp.detach())


def wga_loss(token_logp: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """WGA forget loss: mean over scored tokens of p^beta * log p (minimising it lowers log p)."""
    weighted = wga_weights(token_logp, beta) * token_logp
    return weighted[mask].sum() / mask.sum().clamp(min=1)


def kl_to_reference(logits: torch.Tensor, ref_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(reference || model) of the next-token distributions, averaged over the masked positions."""
    logq = torch.log_softmax(logits.float(), dim=-1)
    logp = torch.log_softmax(ref_logits.float(), dim=-1)
    per_position = (logp.exp() * (logp - logq)).sum(dim=-1)
    return per_position[mask].sum() / mask.sum().clamp(min=1)


def activation_mse(activations: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over hidden units and masked positions; `target` broadcasts to (B, T, d)."""
    squared = (activations.float() - target.float()).pow(2).mean(dim=-1)
    return squared[mask].sum() / mask.sum().clamp(min=1)


def rmu_control_vector(dim: int, coeff: float, seed: int) -> torch.Tensor:
    """RMU's fixed random target c*u/|u| with u ~ U[0, 1)^dim, reproducible from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(dim, generator=generator, dtype=torch.float64)
    return coeff * u / u.norm()


def refusal_direction(refusal_activations: torch.Tensor, forget_activations: torch.Tensor) -> torch.Tensor:
    """LUNAR's direction (float64): mean activation on refused prompts minus mean on forget prompts."""
    return refusal_activations.double().mean(dim=0) - forget_activations.double().mean(dim=0)


def lunar_target(outputs: torch.Tensor, direction: torch.Tensor, coeff: float) -> torch.Tensor:
    """LUNAR's regression target for forget positions: the original MLP output moved coeff*direction."""
    return outputs + coeff * direction.to(outputs.dtype)

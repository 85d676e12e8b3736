"""TOFU metrics as published (Maini et al., 2024), in OpenUnlearning's definitions.

The maths is kept apart from the model calls: the pure functions take per-sample mean token
NLLs (answer given question, teacher forcing) so they can be checked by hand; the wrappers
compute those NLLs with `obliviate.chat.answer_logprobs` on TOFU rows.

With P̄(a | q) = exp(-mean token NLL of a given q), the length-normalised answer probability:
- **Prob** (`*_Q_A_Prob`): P̄(answer); mean over the set.
- **Prob with options** (real authors / world facts): P̄(true) / (P̄(true) + Σ P̄(false)).
- **ROUGE** (`*_Q_A_ROUGE`): ROUGE-L recall of a greedy generation (200 new tokens) vs the answer.
- **Truth ratio**: per sample R = P̄(perturbed) / P̄(paraphrased), where P̄(perturbed) =
  exp(-mean over the perturbed answers of their mean NLL) (the reference code averages the
  losses, i.e. a geometric mean of probabilities). Forget and retain rows compare against
  `paraphrased_answer`; real authors / world facts (which have no paraphrase) against `answer`,
  as the reference does.
  Aggregates: forget `closer_to_1_better` = mean(min(R, 1/R)); others `true_better` =
  mean(max(0, 1 - R)) (the legacy TOFU code's mean(max(0, 1 - 1/R')) with R' = 1/R, the same
  number); and OpenUnlearning's `prob_mean` = mean(P̄para / (P̄para + P̄pert)) = mean(1 / (1 + R)).
- **Forget quality**: p-value of the two-sample KS test between the per-sample forget-set truth
  ratios of the unlearned model and of a retain model (never trained on the forget set). None,
  with the reason, when no retain model's ratios are given. >= 0.05: indistinguishable.
- **Model utility**: harmonic mean of the 9 numbers {retain, ra, wf} x {Prob, ROUGE, Truth
  Ratio (true_better)}, with the option-normalised Prob for ra and wf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import ks_2samp
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from obliviate.chat import answer_logprobs, ask, chat_prompt
from obliviate.eval.metrics.base import METRICS, MetricResult, averaged, by_index
from obliviate.eval.metrics.rouge import rouge_l_scores

TRUTH_RATIO_AGGREGATORS = ("closer_to_1_better", "true_better", "prob_mean")
UTILITY_COMPONENTS = (
    "retain_Q_A_Prob",
    "retain_Q_A_ROUGE",
    "retain_Truth_Ratio",
    "ra_Q_A_Prob_normalised",
    "ra_Q_A_ROUGE",
    "ra_Truth_Ratio",
    "wf_Q_A_Prob_normalised",
    "wf_Q_A_ROUGE",
    "wf_Truth_Ratio",
)
ROUGE_MAX_NEW_TOKENS = 200

# ---------------------------------------------------------------- pure maths on NLL arrays


def _as_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one value per sample, got shape {array.shape}")
    return array


def _as_2d(values: Sequence[Sequence[float]] | np.ndarray, rows: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != rows or array.shape[1] == 0:
        raise ValueError(f"{name} must have shape ({rows}, k>=1), got {array.shape}")
    return array


def answer_probability(mean_nll: Sequence[float] | np.ndarray) -> np.ndarray:
    """P̄ = exp(-mean token NLL) per sample."""
    return np.exp(-_as_1d(mean_nll, "mean_nll"))


def normalised_probability(
    true_nll: Sequence[float] | np.ndarray, false_nll: Sequence[Sequence[float]] | np.ndarray
) -> np.ndarray:
    """P̄(true) / (P̄(true) + Σ_j P̄(false_j)) per sample; `false_nll` has shape (n, k)."""
    true_p = answer_probability(true_nll)
    false_p = np.exp(-_as_2d(false_nll, true_p.size, "false_nll")).sum(axis=1)
    return true_p / (true_p + false_p)


def truth_ratios(
    correct_nll: Sequence[float] | np.ndarray, perturbed_nll: Sequence[Sequence[float]] | np.ndarray
) -> np.ndarray:
    """R = P̄(perturbed) / P̄(correct) = exp(NLL_correct - mean_j NLL_perturbed_j) per sample."""
    correct = _as_1d(correct_nll, "correct_nll")
    perturbed = _as_2d(perturbed_nll, correct.size, "perturbed_nll")
    return np.exp(correct - perturbed.mean(axis=1))


def aggregate_truth_ratio(ratios: Sequence[float] | np.ndarray, aggregator: str) -> float:
    """`closer_to_1_better` (forget), `true_better` (retain, ra, wf) or `prob_mean`."""
    r = _as_1d(ratios, "ratios")
    if r.size == 0:
        raise ValueError("no truth ratios to aggregate")
    if aggregator == "closer_to_1_better":
        return float(np.mean(np.minimum(r, 1.0 / r)))
    if aggregator == "true_better":
        return float(np.mean(np.maximum(0.0, 1.0 - r)))
    if aggregator == "prob_mean":
        return float(np.mean(1.0 / (1.0 + r)))
    raise ValueError(f"unknown truth-ratio aggregator {aggregator!r}; choose from {TRUTH_RATIO_AGGREGATORS}")


def forget_quality(
    unlearned_ratios: Sequence[float] | np.ndarray, retain_ratios: Sequence[float] | np.ndarray | None
) -> tuple[float | None, str | None]:
    """(KS two-sample p-value, None), or (None, reason) without usable retain-model ratios."""
    unlearned = _as_1d(unlearned_ratios, "unlearned_ratios")
    if unlearned.size == 0:
        return None, "the unlearned model has no forget-set truth ratios"
    if retain_ratios is None:
        return None, "no retain model truth ratios on the forget set (train a retain model to get forget quality)"
    retain = _as_1d(retain_ratios, "retain_ratios")
    if retain.size == 0:
        return None, "the retain model's forget-set truth ratios are empty"
    return float(ks_2samp(unlearned, retain).pvalue), None


def harmonic_mean(values: Sequence[float]) -> float:
    """n / Σ 1/x, and 0 if any value is 0 (the limit); values must be >= 0."""
    array = _as_1d(values, "values")
    if array.size == 0 or np.any(array < 0) or np.any(np.isnan(array)):
        raise ValueError(f"harmonic mean needs non-negative numbers, got {array.tolist()}")
    if np.any(array == 0):
        return 0.0
    return float(array.size / np.sum(1.0 / array))


def model_utility(components: Mapping[str, float]) -> float:
    """Harmonic mean of the 9 `UTILITY_COMPONENTS`."""
    missing = [c for c in UTILITY_COMPONENTS if c not in components]
    if missing:
        raise ValueError(f"model utility needs {', '.join(missing)}")
    return harmonic_mean([float(components[c]) for c in UTILITY_COMPONENTS])


# ---------------------------------------------------------------- model-calling wrappers


def answer_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 32,
) -> np.ndarray:
    """Mean token NLL of each answer (EOS included) given its question's chat prompt."""
    prompts = [chat_prompt(tokenizer, q) for q in questions]
    logprobs = answer_logprobs(model, tokenizer, prompts, answers, batch_size)
    for answer, lp in zip(answers, logprobs):
        if lp.numel() == 0:
            raise ValueError(f"answer {answer!r} has no tokens to score")
    return np.array([-lp.double().mean().item() for lp in logprobs])


def options_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: Sequence[str],
    options: Sequence[Sequence[str]],
    batch_size: int = 32,
) -> np.ndarray:
    """(n, k) mean NLLs of k answers per question (every question needs the same k)."""
    counts = {len(o) for o in options}
    if len(counts) != 1 or 0 in counts:
        raise ValueError(f"every question needs the same non-zero number of answers, got {sorted(counts)}")
    k = counts.pop()
    flat = answer_nll(
        model, tokenizer, [q for q in questions for _ in range(k)], [a for o in options for a in o], batch_size
    )
    return flat.reshape(len(questions), k)


def _field(rows: Sequence[Mapping], key: str) -> list:
    try:
        return [row[key] for row in rows]
    except KeyError:
        raise ValueError(f"every TOFU row needs a {key!r} field") from None


@METRICS.register("tofu_probability")
def probability_metric(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping],
    answer_key: str = "answer",
    batch_size: int = 32,
) -> MetricResult:
    """Mean P̄(answer | question); per sample `{"prob", "avg_loss"}`."""
    nll = answer_nll(model, tokenizer, _field(rows, "question"), _field(rows, answer_key), batch_size)
    probs = answer_probability(nll)
    return averaged(probs, [{"prob": float(p), "avg_loss": float(n)} for p, n in zip(probs, nll)])


@METRICS.register("tofu_probability_w_options")
def probability_with_options_metric(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping],
    batch_size: int = 32,
) -> MetricResult:
    """Mean option-normalised probability of `answer` against `perturbed_answer` (ra / wf)."""
    questions = _field(rows, "question")
    true_nll = answer_nll(model, tokenizer, questions, _field(rows, "answer"), batch_size)
    false_nll = options_nll(model, tokenizer, questions, _field(rows, "perturbed_answer"), batch_size)
    probs = normalised_probability(true_nll, false_nll)
    return averaged(probs, [{"prob": float(p)} for p in probs])


@METRICS.register("tofu_truth_ratio")
def truth_ratio_metric(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping],
    aggregator: str,
    correct_key: str = "paraphrased_answer",
    batch_size: int = 32,
) -> MetricResult:
    """Truth ratio of `perturbed_answer` vs `correct_key`; per sample `{"score": R}`."""
    if aggregator not in TRUTH_RATIO_AGGREGATORS:
        raise ValueError(f"unknown truth-ratio aggregator {aggregator!r}; choose from {TRUTH_RATIO_AGGREGATORS}")
    questions = _field(rows, "question")
    correct = answer_nll(model, tokenizer, questions, _field(rows, correct_key), batch_size)
    perturbed = options_nll(model, tokenizer, questions, _field(rows, "perturbed_answer"), batch_size)
    ratios = truth_ratios(correct, perturbed)
    return MetricResult(aggregate_truth_ratio(ratios, aggregator), by_index([{"score": float(r)} for r in ratios]))


@METRICS.register("tofu_rouge")
def rouge_metric(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: Sequence[Mapping],
    max_new_tokens: int = ROUGE_MAX_NEW_TOKENS,
) -> MetricResult:
    """Mean ROUGE-L recall of greedy answers; per sample `{"rougeL_recall", "generation"}`."""
    generations = ask(model, tokenizer, _field(rows, "question"), max_new_tokens)
    scores = rouge_l_scores(generations, _field(rows, "answer"))
    per_sample = [{"rougeL_recall": s["rougeL_recall"], "generation": g} for s, g in zip(scores, generations)]
    return averaged([s["rougeL_recall"] for s in scores], per_sample)


@METRICS.register("forget_quality")
def forget_quality_metric(unlearned: MetricResult, retain: MetricResult | None) -> MetricResult:
    """KS p-value between two forget-set `tofu_truth_ratio` results (unlearned, retain model)."""
    retain_ratios = None if retain is None else retain.values("score")
    p_value, reason = forget_quality(unlearned.values("score"), retain_ratios)
    return MetricResult(p_value, reason=reason)


@METRICS.register("model_utility")
def model_utility_metric(components: Mapping[str, MetricResult | float]) -> MetricResult:
    """Harmonic mean of the 9 utility components; per entry the component's value."""
    values = {
        name: (c.agg_value if isinstance(c, MetricResult) else c) for name, c in components.items()
    }
    absent = [name for name in UTILITY_COMPONENTS if values.get(name) is None]
    if absent:
        return MetricResult(None, reason=f"missing utility components: {', '.join(absent)}")
    return MetricResult(model_utility(values), {name: values[name] for name in UTILITY_COMPONENTS})


def tofu_suite(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget_rows: Sequence[Mapping],
    retain_rows: Sequence[Mapping],
    real_authors_rows: Sequence[Mapping],
    world_facts_rows: Sequence[Mapping],
    retain_model_forget_truth_ratio: MetricResult | None = None,
    max_new_tokens: int = ROUGE_MAX_NEW_TOKENS,
    batch_size: int = 32,
) -> dict[str, MetricResult]:
    """OpenUnlearning's TOFU metric set, keyed by its names.

    `forget_rows` / `retain_rows` are `forgetNN_perturbed` / `retain_perturbed` rows;
    `real_authors_rows` / `world_facts_rows` are the `*_perturbed` rows. Pass the retain model's
    `forget_truth_ratio` result to get forget quality.
    """
    out: dict[str, MetricResult] = {
        "forget_Q_A_Prob": probability_metric(model, tokenizer, forget_rows, batch_size=batch_size),
        "forget_Q_A_ROUGE": rouge_metric(model, tokenizer, forget_rows, max_new_tokens),
        "forget_truth_ratio": truth_ratio_metric(
            model, tokenizer, forget_rows, "closer_to_1_better", batch_size=batch_size
        ),
        "retain_Q_A_Prob": probability_metric(model, tokenizer, retain_rows, batch_size=batch_size),
        "retain_Q_A_ROUGE": rouge_metric(model, tokenizer, retain_rows, max_new_tokens),
        "retain_Truth_Ratio": truth_ratio_metric(model, tokenizer, retain_rows, "true_better", batch_size=batch_size),
    }
    for prefix, rows in (("ra", real_authors_rows), ("wf", world_facts_rows)):
        out[f"{prefix}_Q_A_Prob_normalised"] = probability_with_options_metric(model, tokenizer, rows, batch_size)
        out[f"{prefix}_Q_A_ROUGE"] = rouge_metric(model, tokenizer, rows, max_new_tokens)
        out[f"{prefix}_Truth_Ratio"] = truth_ratio_metric(
            model, tokenizer, rows, "true_better", correct_key="answer", batch_size=batch_size
        )
    out["forget_quality"] = forget_quality_metric(out["forget_truth_ratio"], retain_model_forget_truth_ratio)
    out["model_utility"] = model_utility_metric({name: out[name] for name in UTILITY_COMPONENTS})
    return out

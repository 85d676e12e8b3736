"""Evaluation metrics, one concept per module, each a plain function returning a `MetricResult`.

Importing this package registers every metric in `METRICS`, so the harness can look them up by
name (`METRICS.get("rouge_l_recall")`). Results serialise OpenUnlearning-style as
`{"agg_value": ..., "value_by_index": {"0": ..., "1": ...}}`.
"""

from obliviate.eval.metrics import accuracy, gibberish, judge, mia, perplexity, refusal, rouge, tofu
from obliviate.eval.metrics.base import METRICS, MetricResult

__all__ = [
    "METRICS",
    "MetricResult",
    "accuracy",
    "gibberish",
    "judge",
    "mia",
    "perplexity",
    "refusal",
    "rouge",
    "tofu",
]

"""Attacks on unlearned models, one module each; importing this package fills `ATTACKS`.

Each module holds a function of its own name. Prompt attacks turn forget items into
`AttackedPrompt`s (ask a model with `generate_attacked`):
- `paraphrase(items, world=None, field="paraphrased_question", rewrite=rule_based_paraphrase)`
- `crosslingual(items, world=None, languages=("es", "fr", "de"), translate=None, splits=None)`
- `jailbreak(items, templates=TEMPLATES, retain=None, world=None, n_shots=3)`
- `zerothink(items, block=EMPTY_THINK)`
Model attacks take the model:
- `relearn(model, tokenizer, items, config=None, related=None, ...) -> RelearnResult`
  (a fine-tuned copy plus the forget indices used and held out);
- `membership(model, tokenizer, forget, holdout, k=0.4) -> MembershipResult` (Min-K% AUC).
"""

from obliviate.eval.attacks import crosslingual, jailbreak, membership, paraphrase, relearn, zerothink
from obliviate.eval.attacks.base import ATTACKS, AttackedPrompt, generate_attacked, render

PROMPT_ATTACKS = ("paraphrase", "crosslingual", "jailbreak", "zerothink")
MODEL_ATTACKS = ("relearn", "membership")

__all__ = [
    "ATTACKS",
    "MODEL_ATTACKS",
    "PROMPT_ATTACKS",
    "AttackedPrompt",
    "crosslingual",
    "generate_attacked",
    "jailbreak",
    "membership",
    "paraphrase",
    "relearn",
    "render",
    "zerothink",
]

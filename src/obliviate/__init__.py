"""obliviate: make language models forget what they should not know.

Two systems (RePAIR/STAMP closed-form repair, TRU reasoning unlearning), the baselines they beat,
and the harness that measures them, on any Hugging Face causal LM or the shipped lab model.
"""

__version__ = "0.1.0"

"""Unlearning methods: the STAMP closed-form editor, TRU and the baselines, one module each."""

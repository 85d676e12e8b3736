"""The lab: a generated world whose every fact is known, and a small model trained on it."""

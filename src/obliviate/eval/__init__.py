"""Evaluation harness: metrics, judges, attacks and benchmark data loaders."""

"""Shared test settings: offline, and one thread per test process (the machine has 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "OBLIVIATE_CACHE" not in os.environ:  # STAMP statistics on disk: per test run, never the user's cache
    import tempfile

    os.environ["OBLIVIATE_CACHE"] = tempfile.mkdtemp(prefix="obliviate-test-cache-")

import torch  # noqa: E402

torch.set_num_threads(1)

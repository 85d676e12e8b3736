"""Shared test settings: offline, and one thread per test process (the machine has 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "OBLIVIATE_CACHE" not in os.environ:  # STAMP statistics on disk: per test run, never the user's cache
    import tempfile

    os.environ["OBLIVIATE_CACHE"] = tempfile.mkdtemp(prefix="obliviate-test-cache-")

import torch  # noqa: E402

torch.set_num_threads(1)


def _tofu_data_found() -> bool:
    from obliviate.eval.tofu_data import resolve_tofu_dir

    try:
        return resolve_tofu_dir() is not None
    except FileNotFoundError:
        return False


def pytest_collection_modifyitems(config, items):
    """Tests marked `tofu_data` need the TOFU JSONL files every developer and CI have beside the
    project (`../shared/data/tofu`); in a clone without them they are skipped, saying why."""
    marked = [item for item in items if "tofu_data" in item.keywords]
    if marked and not _tofu_data_found():
        import pytest

        skip = pytest.mark.skip(reason="TOFU data not found: set OBLIVIATE_TOFU_DIR or clone beside shared/")
        for item in marked:
            item.add_marker(skip)

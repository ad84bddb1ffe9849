"""Tests never touch the network: hub look-ups are forced offline before transformers is imported."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bundled():
    """The bundled model, loaded once per test session."""
    from mllm_explain import load_model

    return load_model()

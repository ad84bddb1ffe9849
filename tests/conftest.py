"""Tests never touch the network: hub look-ups are forced offline before transformers is imported."""

import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def bundled():
    """The bundled model, loaded once per test session."""
    from mllm_explain import load_model

    return load_model()


SHARED_NLTK_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nltk_data"
DEBIAN_WORDNET = Path("/usr/share/wordnet")  # Debian's wordnet-base and wordnet-sense-index


@pytest.fixture(scope="session")
def nltk_data(tmp_path_factory):
    """A folder for `--nltk-data`: NLTK's tagger and WordNet, for TAM's protocol.  None when NLTK's own path
    already has them (a user's download); else assembled from the project's shared data (the tagger and
    WordNet's `lexnames`) and Debian's WordNet files, which .ci/run installs.  Copied, not linked: NLTK refuses
    data whose real path leaves its folder.  Missing data skips the TAM-protocol tests on a contributor's
    machine, and fails them under CI, where they must run."""
    from mllm_explain.errors import UserError
    from mllm_explain.evaluation.tam_protocol import TamLanguage

    try:
        TamLanguage()
        return None
    except UserError:
        pass
    tagger = SHARED_NLTK_DATA / "taggers" / "averaged_perceptron_tagger.zip"
    lexnames = SHARED_NLTK_DATA / "corpora" / "wordnet-lexnames"
    if not (tagger.is_file() and lexnames.is_file() and (DEBIAN_WORDNET / "index.sense").is_file()):
        reason = (f"NLTK's tagger and WordNet are not here (neither on NLTK's path nor {SHARED_NLTK_DATA} with "
                  f"{DEBIAN_WORDNET}: apt-get install wordnet-base wordnet-sense-index, as .ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("nltk_data")
    wordnet = folder / "corpora" / "wordnet"
    wordnet.mkdir(parents=True)
    for path in DEBIAN_WORDNET.iterdir():
        if path.is_file():
            shutil.copyfile(path, wordnet / path.name)
    shutil.copyfile(lexnames, wordnet / "lexnames")
    (folder / "taggers").mkdir()
    shutil.copyfile(tagger, folder / "taggers" / tagger.name)
    return folder

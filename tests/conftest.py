import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def embedded():
    from clbench.model import load_model

    return load_model("embedded")


@pytest.fixture(scope="session")
def harness(embedded):
    from clbench.harness import Harness

    return Harness(embedded.model, embedded.tokenizer)

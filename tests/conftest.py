from pathlib import Path

import pytest

from mlprune.data.synthetic import generate_voc_dataset

CLASSES = ["circle", "square", "triangle", "cross", "ring"]


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory) -> Path:
    """A 12-image synthetic VOC root (8 trainval, 4 test) at 96x96."""
    root = tmp_path_factory.mktemp("tiny") / "voc"
    generate_voc_dataset(root, CLASSES, n_trainval=8, n_test=4, image_size=96, seed=3)
    return root

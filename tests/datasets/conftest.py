"""Fixtures of the dataset tests: tiny MNIST-like arrays (helpers in ``tests/dataset_files.py``)."""

import pytest
from dataset_files import tiny_mnist


@pytest.fixture
def mnist_arrays():
    return tiny_mnist()

"""pathdep.data.sources.text: windows and next-character targets against the string, the
vocabulary, the positional split and stride, the prepared file, errors naming the key."""

import numpy as np
import pytest

from pathdep.data import load_dataset
from pathdep.data.prepare import prepare_dataset
from pathdep.data.registry import check_spec, dataset_info


def test_windows_targets_and_split(tmp_path):
    text = "the cat sat on the mat. " * 10 + "ünïcode!"
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    spec = {"source": "text", "path": str(path), "context": 5, "stride": 2, "test_fraction": 0.25}
    info = dataset_info("t", spec)
    prepare_dataset("t", spec, tmp_path / "t.h5")
    d = load_dataset(tmp_path / "t.h5")
    vocab = sorted(set(text))
    assert info["in_shape"] == (5,) and info["out_dim"] == len(vocab) and info["n_train"] == len(d.x_train)
    x = np.concatenate([d.x_train.numpy(), d.x_test.numpy()]).astype(np.int64)
    y = np.concatenate([d.y_train.numpy(), d.y_test.numpy()])
    starts = list(range(0, len(text) - 5, 2))
    assert len(x) == len(starts)
    for row, target, i in zip(x, y, starts):
        assert "".join(vocab[j] for j in row) == text[i:i + 5] and vocab[target] == text[i + 5]
    # by position: every train target comes before every test target
    cut = round(0.75 * len(text))
    n_tr = len(d.x_train)
    assert starts[n_tr - 1] + 5 < cut <= starts[n_tr] + 5


def test_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"^datasets\.t\.path: no such file"):
        dataset_info("t", {"source": "text", "path": str(tmp_path / "missing.txt")})
    (tmp_path / "short.txt").write_text("abc")
    with pytest.raises(ValueError, match=r"^datasets\.t\.context: "):
        dataset_info("t", {"source": "text", "path": str(tmp_path / "short.txt"), "context": 8})
    with pytest.raises(ValueError, match=r"^datasets\.t\.stride: "):
        check_spec("t", {"source": "text", "path": "x.txt", "stride": 0})

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.config import TrainConfig
from dcgan.data import DataError, load_splits, read_idx_dir, split_indices, to_float, to_uint8



def test_digits_embedded_resized_and_split():
    s = load_splits(TrainConfig(dataset="digits", image_size=16))
    assert s.channels == 1 and s.num_classes == 10
    assert s.train.images.shape[1:] == (1, 16, 16) and s.train.images.dtype == torch.uint8
    assert len(s.train) + len(s.heldout) == 1797 and len(s.heldout) == 180
    x = to_float(s.train.images[:10])
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.5


def test_split_is_fixed_disjoint_and_independent_of_the_seed():
    a_train, a_held = split_indices(1000, 0.2)
    b_train, b_held = split_indices(1000, 0.2)
    assert torch.equal(a_held, b_held) and len(a_held) == 200
    assert not set(a_train.tolist()) & set(a_held.tolist())
    s0 = load_splits(TrainConfig(image_size=8, seed=0))
    s1 = load_splits(TrainConfig(image_size=8, seed=5))
    assert torch.equal(s0.heldout.images, s1.heldout.images)


def test_float_uint8_round_trip():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(to_uint8(to_float(x)), x)


def test_idx_reads_the_shared_mnist(mnist_dir):
    images, labels = read_idx_dir(str(mnist_dir))
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)
    assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    s = load_splits(TrainConfig(dataset=f"idx:{mnist_dir}", image_size=28, holdout_fraction=0.2))
    assert len(s.train) == 8000 and len(s.heldout) == 2000 and s.num_classes == 10


def test_stacked_mnist_has_1000_modes(mnist_dir):
    s = load_splits(TrainConfig(dataset=f"stacked-mnist:{mnist_dir}", image_size=28))
    assert s.channels == 3 and s.num_classes == 1000
    assert s.train.images.shape[1:] == (3, 28, 28)
    assert len(torch.unique(s.train.labels)) > 990


def _write_images(folder, n, size=(20, 12), color=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"{i}.png")


def test_flat_folder_resized_and_centre_cropped(tmp_path):
    _write_images(tmp_path / "flat", 20)
    s = load_splits(TrainConfig(dataset=f"folder:{tmp_path / 'flat'}", image_size=8))
    assert s.channels == 3 and s.num_classes == 0 and s.train.labels is None
    assert s.train.images.shape == (18, 3, 8, 8)


def test_image_folder_has_labels(tmp_path):
    _write_images(tmp_path / "cls" / "cats", 10)
    _write_images(tmp_path / "cls" / "dogs", 10)
    s = load_splits(TrainConfig(dataset=f"folder:{tmp_path / 'cls'}", image_size=8))
    assert s.num_classes == 2
    assert sorted(torch.cat([s.train.labels, s.heldout.labels]).tolist()) == [0] * 10 + [1] * 10


@pytest.mark.parametrize("dataset,match", [
    ("folder:/nonexistent/path", "not found"),
    ("idx:/nonexistent/path", "not found"),
    ("imagenet", "unknown dataset 'imagenet'; known: digits"),
])
def test_bad_datasets(dataset, match):
    with pytest.raises(DataError, match=match):
        load_splits(TrainConfig(dataset=dataset, image_size=8))


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="no images"):
        load_splits(TrainConfig(dataset=f"folder:{tmp_path / 'empty'}", image_size=8))


def _idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_torchvision_mnist_reads_local_files_without_downloading(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _idx(raw / "train-images-idx3-ubyte", rng.integers(0, 255, (50, 28, 28)))
    _idx(raw / "train-labels-idx1-ubyte", np.arange(50) % 10)
    _idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 28, 28)))
    _idx(raw / "t10k-labels-idx1-ubyte", np.arange(10) % 10)
    s = load_splits(TrainConfig(dataset="mnist", data_root=str(tmp_path), image_size=16))
    assert len(s.train) + len(s.heldout) == 50 and s.train.images.shape[1:] == (1, 16, 16)


def test_download_failure_says_how_to_provide_the_data(tmp_path, monkeypatch):
    # a closed local port as proxy: the download fails at once, with no traffic leaving the machine
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(DataError, match="could not download FashionMNIST.*DCGAN_DATA_ROOT"):
        load_splits(TrainConfig(dataset="fashion-mnist", data_root=str(tmp_path / "root"), image_size=8))


def test_a_streamed_folders_unreadable_images_are_found_by_the_data_check(user_folders, monkeypatch):
    """A folder too large to hold is not decoded when loaded; check_data opens every file (the
    driver's check, before any trial), and names the first bad one and how many there are."""
    from dcgan import data
    from dcgan.data import DataError, check_data

    monkeypatch.setattr(data, "RESIDENT_LIMIT_BYTES", 0)
    data.load_dataset.cache_clear()
    try:
        cfg = TrainConfig(dataset=f"folder:{user_folders.corrupt}", image_size=8, batch_size=8)
        assert not load_splits(cfg).train.resident
        with pytest.raises(DataError, match=rf"^2 of 42 images in {user_folders.corrupt} cannot be read, the first "
                                            rf"{user_folders.corrupt}/a.png \(.+\); remove or replace them$"):
            check_data(cfg)
        assert len(check_data(cfg.replace(dataset=f"folder:{user_folders.small}"), 4).train) == 36
    finally:
        data.load_dataset.cache_clear()

"""Datasets, all as images in [-1, 1] with a seeded, fixed held-out split.

`load_splits(cfg)` returns the training and held-out `ImageSet`s. Small datasets are held as
one uint8 tensor (N, C, H, W) that the training loop moves to its device once; folders too
large for that stream from disk through a DataLoader.

Names: digits (scikit-learn's 8x8 digits, embedded, the default), mnist, fashion-mnist,
cifar10 (torchvision, downloaded where there is a network), stacked-mnist[:IDX_DIR],
folder:PATH and idx:PATH.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from dcgan.config import LOCAL_PATH_DATASETS, ConfigError, TrainConfig

KNOWN = ("digits", "mnist", "fashion-mnist", "cifar10", "stacked-mnist", "stacked-mnist:IDX_DIR",
         "folder:PATH", "idx:PATH")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
RESIDENT_LIMIT_BYTES = 2 << 30  # decoded uint8 size above which a folder streams from disk
SPLIT_SEED = 20140610  # the split never depends on the run's seed: every trial scores the same split


class DataError(ConfigError):
    """A dataset that cannot be loaded; the message says how to fix it."""


@dataclass
class ImageSet:
    """One split. Resident: `images` is uint8 (N, C, H, W). Streamed: `stream` yields the same."""

    images: Optional[torch.Tensor]
    labels: Optional[torch.Tensor]  # int64 (N,), or None for unlabelled data
    stream: Optional[torch.utils.data.Dataset] = None

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.stream)

    @property
    def resident(self) -> bool:
        return self.images is not None


@dataclass
class Splits:
    """A dataset at one image size, split into train and held-out: what the loop trains on and what
    the metrics are measured against (their cache keys come from these fields)."""

    name: str  # the dataset as named, e.g. "digits" or "idx:/data/mnist"
    train: ImageSet
    heldout: ImageSet
    channels: int
    num_classes: int  # 0 for unlabelled data
    image_size: int
    holdout_fraction: float
    data_root: str = ""


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    assert images.dtype == torch.uint8, images.dtype
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to the nearest level."""
    return images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def load_splits(cfg: TrainConfig) -> Splits:
    """The dataset of `cfg`, resized to `cfg.image_size`, split into train and held-out."""
    return load_dataset(cfg.dataset, cfg.image_size, cfg.holdout_fraction, cfg.data_root)


@functools.lru_cache(maxsize=4)
def load_dataset(dataset: str, size: int, holdout_fraction: float = 0.1, data_root: str = "") -> Splits:
    """A dataset by name (see KNOWN), resized to `size` px, split into train and held-out.
    Cached per process: trials that share a process load it once."""
    name, _, arg = dataset.partition(":")
    if name == "folder":
        return _folder_splits(dataset, arg, size, holdout_fraction, data_root)
    loaders: dict[str, Callable[[], tuple[torch.Tensor, Optional[torch.Tensor]]]] = {
        "digits": _digits,
        "mnist": lambda: _torchvision("MNIST", data_root),
        "fashion-mnist": lambda: _torchvision("FashionMNIST", data_root),
        "cifar10": lambda: _torchvision("CIFAR10", data_root),
        "idx": lambda: read_idx_dir(arg),
        "stacked-mnist": lambda: stack_mnist(*(read_idx_dir(arg) if arg else _torchvision("MNIST", data_root))),
    }
    if name not in loaders or (name == "idx" and not arg) or (name not in LOCAL_PATH_DATASETS and arg):
        raise DataError(f"unknown dataset '{dataset}'; known: {', '.join(KNOWN)}")
    images, labels = loaders[name]()
    images = resize(images, size)
    train_idx, held_idx = split_indices(len(images), holdout_fraction)
    num_classes = int(labels.max()) + 1 if labels is not None else 0
    if name == "stacked-mnist":
        num_classes = 1000

    def subset(idx: torch.Tensor) -> ImageSet:
        return ImageSet(images[idx].contiguous(), labels[idx] if labels is not None else None)

    return Splits(dataset, subset(train_idx), subset(held_idx), images.shape[1], num_classes, size, holdout_fraction,
                  data_root)


def split_indices(n: int, holdout_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed permutation (independent of the run's seed): the first part is held out."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_held = int(round(n * holdout_fraction))
    return perm[n_held:].sort().values, perm[:n_held].sort().values


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, h, w) -> uint8 (N, C, size, size); antialiased, in chunks to bound memory."""
    assert images.dtype == torch.uint8 and images.dim() == 4, (images.dtype, images.shape)
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = []
    for chunk in images.split(4096):
        x = F.interpolate(chunk.float(), size=(size, size), mode="bilinear", antialias=True,
                          align_corners=False)
        out.append(x.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out)


# --- sources --------------------------------------------------------------------------------------


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()  # 1797 images, 8x8, values 0..16
    images = torch.from_numpy(np.round(d.images * (255.0 / 16.0)).astype(np.uint8))[:, None]
    return images, torch.from_numpy(d.target.astype(np.int64))


def data_root(root: str = "") -> Path:
    return Path(root or os.environ.get("DCGAN_DATA_ROOT") or Path.home() / ".cache" / "dcgan-search" / "data")


def _torchvision(cls_name: str, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision dataset's training split: read from `root`, downloaded there if missing."""
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    path = data_root(root)
    try:
        ds = cls(str(path), train=True, download=False)
    except RuntimeError:  # not there yet
        try:
            path.mkdir(parents=True, exist_ok=True)
            ds = cls(str(path), train=True, download=True)
        except Exception as e:  # no network, a proxy, a full disk: all end the same way for the user
            raise DataError(
                f"could not download {cls_name} to {path} ({type(e).__name__}: {' '.join(str(e).split())[:120]}); "
                f"download it where there is a network and point data_root or DCGAN_DATA_ROOT at it"
            ) from None
    data = torch.as_tensor(np.asarray(ds.data))
    images = data[:, None] if data.dim() == 3 else data.permute(0, 3, 1, 2)  # (N, C, H, W)
    return images.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:  # 0x08: unsigned byte, the only type image IDX files use
        raise DataError(f"{path} is not a uint8 IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_idx_dir(arg: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """IDX images (and labels, if beside them): a folder holding *images-idx3-ubyte[.gz], or that file."""
    path = Path(arg).expanduser()
    if not path.exists():
        raise DataError(f"dataset path not found: {path}")
    if path.is_dir():
        found = sorted(path.glob("*images*idx3-ubyte*")) or sorted(path.glob("*idx3-ubyte*"))
        if not found:
            raise DataError(f"no IDX image file (*-images-idx3-ubyte[.gz]) in {path}")
        if len(found) > 1:
            train = [p for p in found if "train" in p.name]
            found = train or found
        image_file = found[0]
    else:
        image_file = path
    images = torch.from_numpy(_read_idx(image_file).copy())
    if images.dim() != 3:
        raise DataError(f"{image_file} holds shape {tuple(images.shape)}, expected (N, H, W)")
    label_name = image_file.name.replace("images-idx3", "labels-idx1")
    label_file = image_file.with_name(label_name)
    labels = None
    if label_name != image_file.name and label_file.exists():
        labels = torch.from_numpy(_read_idx(label_file).astype(np.int64))
    return images[:, None].contiguous(), labels


def stack_mnist(images: torch.Tensor, labels: Optional[torch.Tensor], n: Optional[int] = None,
                seed: int = SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked MNIST: three random digits as the R, G, B channels; 1000 modes (label 100a+10b+c)."""
    if labels is None:
        raise DataError("stacked-mnist needs MNIST labels (a labels-idx1-ubyte file beside the images)")
    n = n or len(images)
    idx = torch.randint(len(images), (n, 3), generator=torch.Generator().manual_seed(seed))
    stacked = images[idx, 0]  # (n, 3, H, W): channel c is digit idx[:, c]
    digit = labels[idx]
    return stacked.contiguous(), digit[:, 0] * 100 + digit[:, 1] * 10 + digit[:, 2]


# --- folders --------------------------------------------------------------------------------------


class _FolderImages(torch.utils.data.Dataset):
    """Image files -> uint8 (3, size, size): shorter side resized to `size`, centre-cropped."""

    def __init__(self, root: Path, files: list[Path], labels: Optional[list[int]], size: int):
        self.root, self.files, self.labels, self.size = root, files, labels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            x = self.decode(i)
        except Exception as e:  # PIL raises many kinds for a bad file (OSError, SyntaxError, ValueError, ...)
            raise DataError(f"image {self.files[i]} cannot be read ({_why(e)}); remove or replace it") from None
        return x, (self.labels[i] if self.labels is not None else -1)

    def decode(self, i: int) -> torch.Tensor:
        from PIL import Image
        from torchvision.transforms import functional as TF

        with Image.open(self.files[i]) as im:
            im = im.convert("RGB")
            im = TF.center_crop(TF.resize(im, self.size, antialias=True), [self.size, self.size])
            return TF.pil_to_tensor(im)

    def unreadable(self) -> list[tuple[Path, str]]:
        """(file, why) of each image that cannot be read, each opened and checked without decoding
        (PIL's verify: cheap enough for a folder too large to hold, and it finds files that are no
        image at all and truncated PNGs)."""
        from PIL import Image

        bad = []
        for path in self.files:
            try:
                with Image.open(path) as im:
                    im.verify()
            except Exception as e:  # as in __getitem__
                bad.append((path, _why(e)))
        return bad


def _why(error: BaseException) -> str:
    return " ".join(str(error).split())[:120] or type(error).__name__


def _folder_splits(dataset: str, arg: str, size: int, holdout_fraction: float, data_root: str) -> Splits:
    root = Path(arg).expanduser()
    if not arg or not root.is_dir():
        raise DataError(f"dataset folder not found: {root}" if arg else "folder: needs a path, as folder:PATH")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    files: list[Path] = []
    labels: Optional[list[int]] = []
    for k, d in enumerate(subdirs):  # ImageFolder layout: one subfolder per class
        class_files = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        files += class_files
        labels += [k] * len(class_files)
    flat = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if flat or not files:  # a flat folder of images: unlabelled
        files, labels = flat + files, None
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
    num_classes = len(subdirs) if labels is not None else 0
    if labels is not None and num_classes < 2:
        labels, num_classes = None, 0
    stream = _FolderImages(root, files, labels, size)
    train_idx, held_idx = split_indices(len(files), holdout_fraction)
    resident = len(files) * 3 * size * size <= RESIDENT_LIMIT_BYTES
    images = _decode_all(stream) if resident else None

    def subset(idx: torch.Tensor) -> ImageSet:
        lab = torch.tensor([labels[i] for i in idx], dtype=torch.int64) if labels is not None else None
        if images is None:
            return ImageSet(None, lab, torch.utils.data.Subset(stream, idx.tolist()))
        return ImageSet(images[idx].contiguous(), lab)

    return Splits(dataset, subset(train_idx), subset(held_idx), 3, num_classes, size, holdout_fraction, data_root)


def _decode_all(stream: _FolderImages) -> torch.Tensor:
    """uint8 (N, 3, size, size): every image of a folder small enough to hold. DataError naming
    the first unreadable file and how many there are."""
    decoded, bad = [], []
    for i in range(len(stream)):
        try:
            decoded.append(stream.decode(i))
        except Exception as e:  # as in _FolderImages.__getitem__
            bad.append((stream.files[i], _why(e)))
    if bad:
        raise unreadable_error(bad, stream)
    return torch.stack(decoded)


def unreadable_error(bad: list[tuple[Path, str]], stream: _FolderImages) -> DataError:
    first, why = bad[0]
    return DataError(f"{len(bad)} of {len(stream)} images in {stream.root} cannot be read, the first {first} "
                     f"({why}); remove or replace them")


def check_data(cfg: TrainConfig, world: int = 1) -> Splits:
    """`cfg`'s data, checked before a run (or a search's trials) starts: it loads, every image of a
    folder reads (held folders are decoded whole when loaded; one streamed from disk is checked
    file by file here), and each of `world` processes' shards fills a batch. DataError if not."""
    splits = load_splits(cfg)
    if not splits.train.resident:
        stream = splits.train.stream.dataset  # a Subset of the folder's images
        bad = stream.unreadable()
        if bad:
            raise unreadable_error(bad, stream)
    n, held = len(splits.train), len(splits.heldout)
    shard = n // world
    if shard < cfg.batch_size:
        has = f"{n} training images ({n + held} less {held} held out)" + (f", {shard} per worker of {world}"
                                                                            if world > 1 else "")
        fix = [f"pass --set batch_size={shard} or less"] if shard else []
        fix += ["use fewer workers"] if world > 1 else []
        raise DataError(f"dataset {cfg.dataset} has {has}, fewer than batch_size {cfg.batch_size}; "
                        f"{', '.join(fix + ['use more images'])}")
    return splits

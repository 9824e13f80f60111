"""Data sources and the deterministic 60/20/20 split.

A data source is described by a small, JSON-serialisable :class:`DataSpec` (so it can be sent
to Ray workers and written into run metadata) and turned into a :class:`SplitData` by
:func:`load_data`. Four kinds of source exist:

* ``"synthetic"``: class-dependent generated images (a random low-frequency colour prototype
  per class plus per-image noise), learnable within a few epochs; for demos and tests.
* ``"imagefolder"``: any ``ROOT/<class>/<image>`` tree read with
  :class:`torchvision.datasets.ImageFolder`.
* ``"digits"``: scikit-learn's bundled handwritten digits (1,797 grey 8x8 images, 10 classes),
  read from the installed scikit-learn package, never downloaded; a small real image set for
  CPU runs and tests.
* a torchvision classification dataset class by name (``"CIFAR10"``, ``"Flowers102"``, ...; see
  :func:`known_datasets`), read from a local root with ``download=False``. All official splits
  of the dataset (e.g. CIFAR-10 train and test) are concatenated into one pool.

Every image is decoded once per access into a ``uint8`` tensor of shape ``[3, S, S]`` (RGB,
shorter side resized to ``S`` then centre-cropped to ``S x S``). The pool is split with a seeded
permutation (``DataSpec.data_seed``, independent of the training seed, so every configuration of
a study sees the same split) into 60 % train, 20 % validation and the remaining ~20 % test.
Normalisation and augmentation happen later, batched, on the training device
(:mod:`trainers.pipeline`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
import torchvision.transforms.functional as TF
from torch import Tensor
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from trainers.errors import DatasetError

SPLIT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
"""Train / validation / test fractions of the pool (test gets the rounding remainder)."""

SYNTHETIC = "synthetic"
IMAGEFOLDER = "imagefolder"
DIGITS = "digits"

# name -> (split argument or None, the official splits to concatenate, default image size)
_TORCHVISION_DATASETS: dict[str, tuple[str | None, tuple[Any, ...], int]] = {
    "CIFAR10": ("train", (True, False), 32),
    "CIFAR100": ("train", (True, False), 32),
    "MNIST": ("train", (True, False), 32),
    "FashionMNIST": ("train", (True, False), 32),
    "KMNIST": ("train", (True, False), 32),
    "USPS": ("train", (True, False), 32),
    "SVHN": ("split", ("train", "test"), 32),
    "STL10": ("split", ("train", "test"), 96),
    "Flowers102": ("split", ("train", "val", "test"), 224),
    "Food101": ("split", ("train", "test"), 224),
    "StanfordCars": ("split", ("train", "test"), 224),
    "OxfordIIITPet": ("split", ("trainval", "test"), 224),
    "DTD": ("split", ("train", "val", "test"), 224),
    "FGVCAircraft": ("split", ("trainval", "test"), 224),
    "Places365": ("split", ("train-standard", "val"), 224),
    "Country211": ("split", ("train", "valid", "test"), 224),
    "GTSRB": ("split", ("train", "test"), 32),
    "PCAM": ("split", ("train", "val", "test"), 96),
    "RenderedSST2": ("split", ("train", "val", "test"), 224),
    "Imagenette": ("split", ("train", "val"), 224),
    "ImageNet": ("split", ("train", "val"), 224),
    "SUN397": (None, (None,), 224),
    "Caltech101": (None, (None,), 224),
    "Caltech256": (None, (None,), 224),
    "EuroSAT": (None, (None,), 64),
    "SEMEION": (None, (None,), 32),
}
_DEFAULT_IMAGE_SIZE = {SYNTHETIC: 32, IMAGEFOLDER: 224, DIGITS: 32}


def known_datasets() -> list[str]:
    """Names accepted by :class:`DataSpec` (``synthetic``, ``imagefolder`` and the torchvision
    classification datasets that the installed torchvision ships)."""
    names = [name for name in _TORCHVISION_DATASETS if hasattr(torchvision.datasets, name)]
    return [SYNTHETIC, IMAGEFOLDER, DIGITS, *names]


def resolve_dataset_name(name: str) -> str:
    """Return the canonical spelling of ``name`` (case-insensitive match).

    Raises:
        DatasetError: ``name`` is unknown; the message lists the known names and the closest
            match.
    """
    known = known_datasets()
    lowered = {k.lower(): k for k in known}
    key = str(name).strip().lower()
    if key in lowered:
        return lowered[key]
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.5)
    hint = f" Did you mean {lowered[close[0]]!r}?" if close else ""
    raise DatasetError(
        f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(known)} "
        f"(use 'imagefolder' with a root of ROOT/<class>/<image> folders for anything else)")


@dataclass(frozen=True)
class DataSpec:
    """What to train on; JSON-serialisable (see :meth:`to_json`).

    Attributes:
        name: ``"synthetic"``, ``"imagefolder"`` or a torchvision dataset class name
            (case-insensitive; see :func:`known_datasets`).
        root: local directory of the files (required except for ``synthetic``). Nothing is
            downloaded unless ``download`` is set.
        download: let torchvision fetch a missing torchvision dataset into ``root`` (needs
            internet; ignored for ``synthetic`` and ``imagefolder``).
        image_size: side ``S`` of the square images; ``None`` picks the dataset's default
            (32 for CIFAR/MNIST-like and synthetic data, 224 for ImageFolder and most others).
        data_seed: seed of the 60/20/20 split (and of the synthetic images).
        synthetic_images: number of synthetic images ``N``.
        synthetic_classes: number of synthetic classes.
        dataset_kwargs: extra keyword arguments for the torchvision class (e.g.
            ``{"small": True}`` for Places365). Giving its split argument (``split`` or
            ``train``) restricts the pool to that one official split.
    """

    name: str
    root: str | None = None
    image_size: int | None = None
    data_seed: int = 0
    synthetic_images: int = 512
    synthetic_classes: int = 10
    dataset_kwargs: Mapping[str, Any] = field(default_factory=dict)
    download: bool = False

    def to_json(self) -> dict[str, Any]:
        """The spec as a JSON-compatible dict."""
        out = asdict(self)
        out["dataset_kwargs"] = dict(self.dataset_kwargs)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "DataSpec":
        """Inverse of :meth:`to_json`."""
        return cls(**dict(obj))


@dataclass
class SplitData:
    """A pool of images with its deterministic train / val / test split.

    Attributes:
        name: canonical source name.
        pool: dataset whose item ``i`` is ``(image uint8 [3, S, S], label int)``.
        targets: labels of the pool, int64 ``[N]``.
        train_idx, val_idx, test_idx: pool indices of each split, int64 ``[n_split]``.
        num_classes: number of classes ``C`` (model output width).
        image_size: ``S``.
        images: the whole pool as uint8 ``[N, 3, S, S]`` once it is in memory (always for
            synthetic data; filled by :func:`materialize` otherwise), else ``None``.
        classes: class names when the source has them.
        spec: the :class:`DataSpec` it came from.
    """

    name: str
    pool: Dataset
    targets: Tensor
    train_idx: Tensor
    val_idx: Tensor
    test_idx: Tensor
    num_classes: int
    image_size: int
    spec: DataSpec
    images: Tensor | None = None
    classes: list[str] | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-compatible summary for run metadata."""
        return {
            "name": self.name,
            "spec": self.spec.to_json(),
            "num_images": int(self.targets.numel()),
            "num_train": int(self.train_idx.numel()),
            "num_val": int(self.val_idx.numel()),
            "num_test": int(self.test_idx.numel()),
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "split_fractions": list(SPLIT_FRACTIONS),
        }


class TensorImageDataset(Dataset):
    """Images already in memory: item ``i`` is ``(images[i] uint8 [3, S, S], int(targets[i]))``."""

    def __init__(self, images: Tensor, targets: Tensor) -> None:
        self.images = images
        self.targets = targets

    def __len__(self) -> int:
        return int(self.targets.numel())

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.images[index], int(self.targets[index])


class _Preprocess:
    """PIL image -> uint8 ``[3, S, S]``: RGB, resize shorter side to ``S``, centre crop."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, image: Any) -> Tensor:
        if hasattr(image, "convert"):
            image = image.convert("RGB")
        image = TF.resize(image, self.size, antialias=True)
        image = TF.center_crop(image, [self.size, self.size])
        tensor = TF.pil_to_tensor(image) if not isinstance(image, Tensor) else image
        if tensor.shape[0] == 1:
            tensor = tensor.expand(3, -1, -1)
        return tensor.contiguous()


class _PoolDataset(Dataset):
    """Wraps a decoded-image dataset; the label comes from the extracted ``targets`` so that
    it is always a plain int, whatever the torchvision class returns."""

    def __init__(self, base: Dataset, targets: Tensor) -> None:
        self.base = base
        self.targets = targets

    def __len__(self) -> int:
        return int(self.targets.numel())

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.base[index][0]
        return image, int(self.targets[index])


def split_indices(n: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Seeded 60/20/20 split of ``range(n)``.

    Returns:
        ``(train, val, test)`` int64 index tensors of sizes ``floor(0.6 n)``,
        ``floor(0.2 n)`` and the remainder.

    Raises:
        DatasetError: ``n < 5`` (some split would be empty).
    """
    if n < 5:
        raise DatasetError(
            f"the data source has {n} images; the 60/20/20 split needs at least 5 "
            f"(use more images)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    n_train = int(math.floor(SPLIT_FRACTIONS[0] * n))
    n_val = int(math.floor(SPLIT_FRACTIONS[1] * n))
    return perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:]


def make_synthetic(num_images: int, num_classes: int, image_size: int,
                   seed: int) -> tuple[Tensor, Tensor]:
    """Generate class-dependent images.

    Each class gets a random 4x4 RGB prototype, bilinearly upsampled to ``S x S``; an image is
    its class prototype plus Gaussian pixel noise and a random brightness offset, so classes are
    separable but not trivially so.

    Returns:
        ``(images uint8 [N, 3, S, S], targets int64 [N])`` with balanced, shuffled labels.
    """
    if num_classes < 2 or num_images < 5:
        raise DatasetError(
            f"synthetic data needs >= 2 classes and >= 5 images, got "
            f"synthetic_classes={num_classes}, synthetic_images={num_images}")
    gen = torch.Generator().manual_seed(int(seed))
    protos = torch.rand(num_classes, 3, 4, 4, generator=gen)
    protos = torch.nn.functional.interpolate(protos, size=(image_size, image_size),
                                             mode="bilinear", align_corners=False)
    targets = torch.arange(num_images) % num_classes
    targets = targets[torch.randperm(num_images, generator=gen)]
    noise = torch.randn(num_images, 3, image_size, image_size, generator=gen) * 0.18
    shift = (torch.rand(num_images, 1, 1, 1, generator=gen) - 0.5) * 0.3
    images = (protos[targets] + noise + shift).clamp_(0.0, 1.0).mul_(255.0).round_()
    return images.to(torch.uint8), targets.to(torch.int64)


def load_digits_images(image_size: int) -> tuple[Tensor, Tensor]:
    """Scikit-learn's bundled digits as RGB images.

    The 8x8 grey values (0-16) are scaled to 0-255, bilinearly resized to ``S x S`` and repeated
    over the 3 channels; the file is read from the installed scikit-learn package (nothing is
    downloaded).

    Returns:
        ``(images uint8 [1797, 3, S, S], targets int64 [1797])`` in the file's order.

    Raises:
        DatasetError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("dataset 'digits' is read from scikit-learn, which is not installed;"
                           " install it with pip install 'at2-tune[digits]' (or pip install "
                           "scikit-learn)") from None
    bunch = load_digits()
    grey = torch.as_tensor(bunch.images, dtype=torch.float32).div_(16.0)[:, None]  # [N, 1, 8, 8]
    if image_size != grey.shape[-1]:
        grey = torch.nn.functional.interpolate(grey, size=(image_size, image_size),
                                               mode="bilinear", align_corners=False)
    images = grey.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return images.expand(-1, 3, -1, -1).contiguous(), torch.as_tensor(bunch.target,
                                                                      dtype=torch.int64)


def _targets_of(dataset: Dataset) -> list[int]:
    """Labels of a torchvision dataset without decoding images where possible."""
    n = len(dataset)  # type: ignore[arg-type]
    for attr in ("targets", "_labels", "labels", "y"):
        values = getattr(dataset, attr, None)
        if values is not None and len(values) == n:
            return [int(v) for v in values]
    for attr in ("_samples", "samples", "imgs"):
        values = getattr(dataset, attr, None)
        if values is not None and len(values) == n and n > 0:
            try:
                return [int(sample[1]) for sample in values]
            except (TypeError, ValueError, IndexError):
                break
    return [int(dataset[i][1]) for i in range(n)]  # slow fallback: decodes every image


def _num_classes_of(dataset: Dataset, targets: Sequence[int]) -> int:
    classes = getattr(dataset, "classes", None) or getattr(dataset, "categories", None)
    from_targets = max(targets) + 1 if targets else 0
    return max(len(classes) if classes is not None else 0, from_targets)


_NO_DOWNLOAD = "at2-tune downloads nothing unless you pass --download / DataSpec(download=True)"


def _check_root(name: str, root: str | None, download: bool = False) -> Path:
    if root is None:
        raise DatasetError(
            f"dataset {name!r} needs a local data root; pass --data-root PATH / "
            f"DataSpec(root=...) ({_NO_DOWNLOAD})")
    path = Path(root).expanduser()
    if download and not path.exists():
        path.mkdir(parents=True)
    if not path.exists():
        raise DatasetError(
            f"data root {str(path)!r} for dataset {name!r} does not exist; create it and put "
            f"the dataset files there, or fix the path ({_NO_DOWNLOAD})")
    if not path.is_dir():
        raise DatasetError(f"data root {str(path)!r} for dataset {name!r} is not a directory")
    return path


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in torchvision.datasets.folder.IMG_EXTENSIONS


def _check_imagefolder_layout(root: Path) -> None:
    """Raise DatasetError with a precise reason when ``root`` is not ROOT/<class>/<image>."""
    layout = "expected ROOT/<class name>/<image file> (e.g. ROOT/cat/001.png, ROOT/dog/002.png)"
    entries = [p for p in sorted(root.iterdir()) if not p.name.startswith(".")]
    class_dirs = [p for p in entries if p.is_dir()]
    loose = [p for p in entries if _is_image(p)]
    if not class_dirs:
        raise DatasetError(
            f"ImageFolder root {str(root)!r} has no class folders ({len(loose)} image files lie "
            f"directly in it); {layout}: move the images into one folder per class")
    empty = [d for d in class_dirs if not any(_is_image(p) for p in d.rglob("*"))]
    nested = [d for d in class_dirs
              if not any(_is_image(p) for p in d.iterdir())
              and any(p.is_dir() and any(_is_image(q) for q in p.iterdir())
                      for p in d.iterdir())]
    if nested and len(nested) == len(class_dirs):
        names = ", ".join(d.name for d in nested)
        raise DatasetError(
            f"ImageFolder root {str(root)!r} looks like a tree of splits ({names}) that contain "
            f"the class folders; {layout}. Point the root at a folder whose subfolders are "
            f"classes (at2-tune makes its own 60/20/20 split), e.g. {str(nested[0])!r}")
    if empty:
        names = ", ".join(repr(d.name) for d in empty[:10])
        raise DatasetError(
            f"ImageFolder root {str(root)!r}: class folder(s) {names} contain no image files "
            f"(extensions {', '.join(torchvision.datasets.folder.IMG_EXTENSIONS)}); {layout}. "
            f"Remove the empty folders or add images")
    if len(class_dirs) < 2:
        raise DatasetError(
            f"ImageFolder root {str(root)!r} has {len(class_dirs)} class folder; classification "
            f"needs at least 2; {layout}")


def _load_imagefolder(spec: DataSpec, size: int) -> tuple[Dataset, list[int], int, list[str]]:
    root = _check_root(IMAGEFOLDER, spec.root)
    _check_imagefolder_layout(root)
    try:
        folder = torchvision.datasets.ImageFolder(str(root), transform=_Preprocess(size),
                                                  **dict(spec.dataset_kwargs))
    except (FileNotFoundError, OSError, RuntimeError, TypeError) as exc:
        raise DatasetError(
            f"could not read ImageFolder root {str(root)!r}: {exc}; expected "
            f"ROOT/<class name>/<image file>") from exc
    return folder, list(folder.targets), len(folder.classes), list(folder.classes)


def _load_torchvision(name: str, spec: DataSpec,
                      size: int) -> tuple[Dataset, list[int], int, list[str] | None]:
    root = _check_root(name, spec.root, spec.download)
    cls = getattr(torchvision.datasets, name)
    split_arg, splits, _ = _TORCHVISION_DATASETS[name]
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = dict(spec.dataset_kwargs)
    if "download" in params:
        kwargs["download"] = bool(spec.download)
    kwargs["transform"] = _Preprocess(size)
    if split_arg is not None and split_arg in kwargs:
        splits = (kwargs.pop(split_arg),)
    parts: list[Dataset] = []
    targets: list[int] = []
    num_classes = 0
    classes: list[str] | None = None
    for split in splits:
        split_kwargs = dict(kwargs) if split_arg is None else {**kwargs, split_arg: split}
        try:
            part = cls(str(root), **split_kwargs)
        except (RuntimeError, OSError, ImportError, ValueError, KeyError) as exc:
            where = "" if split_arg is None else f" ({split_arg}={split!r})"
            raise DatasetError(
                f"could not load torchvision dataset {name}{where} from {str(root)!r} with "
                f"download={bool(spec.download)}: {exc}. Put the dataset files under that root "
                f"in the layout torchvision.datasets.{name} expects ({_NO_DOWNLOAD}, on a "
                f"machine with internet), or use 'imagefolder' for a ROOT/<class>/<image> "
                f"tree") from exc
        part_targets = _targets_of(part)
        parts.append(part)
        targets.extend(part_targets)
        num_classes = max(num_classes, _num_classes_of(part, part_targets))
        names = getattr(part, "classes", None)
        if classes is None and isinstance(names, (list, tuple)):
            classes = [str(c) for c in names]
    pool: Dataset = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    return pool, targets, num_classes, classes


def load_data(spec: DataSpec | str) -> SplitData:
    """Open a data source and split it 60/20/20.

    Args:
        spec: a :class:`DataSpec`, or just a source name (then all other fields default;
            only useful for ``"synthetic"``).

    Returns:
        The :class:`SplitData`. For torchvision / ImageFolder sources images are decoded lazily
        (on access); synthetic images are generated and digits read in memory.

    Raises:
        DatasetError: unknown name (with the list of known ones and a close match), missing
            root, wrong ImageFolder layout, files torchvision cannot find, fewer than 5 images.
    """
    if isinstance(spec, str):
        spec = DataSpec(name=spec)
    name = resolve_dataset_name(spec.name)
    if name in _TORCHVISION_DATASETS:
        default_size = _TORCHVISION_DATASETS[name][2]
    else:
        default_size = _DEFAULT_IMAGE_SIZE[name]
    size = int(spec.image_size) if spec.image_size is not None else default_size
    if size < 8:
        raise DatasetError(f"image_size={size} is too small; use at least 8 pixels")
    images: Tensor | None = None
    classes: list[str] | None = None
    if name == SYNTHETIC:
        images, targets_t = make_synthetic(spec.synthetic_images, spec.synthetic_classes,
                                           size, spec.data_seed)
        pool: Dataset = TensorImageDataset(images, targets_t)
        num_classes = spec.synthetic_classes
        classes = [f"class_{i}" for i in range(num_classes)]
    elif name == DIGITS:
        images, targets_t = load_digits_images(size)
        pool = TensorImageDataset(images, targets_t)
        num_classes = 10
        classes = [str(digit) for digit in range(10)]
    else:
        if name == IMAGEFOLDER:
            base, targets, num_classes, classes = _load_imagefolder(spec, size)
        else:
            base, targets, num_classes, classes = _load_torchvision(name, spec, size)
        targets_t = torch.tensor(targets, dtype=torch.int64)
        pool = _PoolDataset(base, targets_t)
    if num_classes < 2:
        raise DatasetError(f"dataset {name!r} has {num_classes} class(es); need at least 2")
    train_idx, val_idx, test_idx = split_indices(len(targets_t), spec.data_seed)
    return SplitData(name=name, pool=pool, targets=targets_t, train_idx=train_idx,
                     val_idx=val_idx, test_idx=test_idx, num_classes=num_classes,
                     image_size=size, spec=spec, images=images, classes=classes)


def materialize(data: SplitData, num_workers: int = 0, batch_size: int = 256) -> Tensor:
    """Decode the whole pool once into memory and cache it in ``data.images``.

    Returns:
        uint8 ``[N, 3, S, S]`` (CPU).
    """
    if data.images is None:
        loader = DataLoader(data.pool, batch_size=batch_size, shuffle=False,
                            num_workers=num_workers, generator=torch.Generator())
        chunks = [images for images, _ in loader]
        data.images = torch.cat(chunks) if chunks else torch.empty(
            0, 3, data.image_size, data.image_size, dtype=torch.uint8)
    return data.images

"""Data sources, split, layout errors and the two input pipelines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from tests.trainers.helpers import write_image_folder
from trainers.data import (DataSpec, SplitData, known_datasets, load_data, make_synthetic,
                           materialize, resolve_dataset_name, split_indices)
from trainers.errors import DatasetError
from trainers.pipeline import (LoaderBatchSource, TensorBatchSource, augment_batch,
                               eval_batch_plan, train_batch_plan)


def test_split_is_deterministic_60_20_20() -> None:
    a = split_indices(100, seed=3)
    b = split_indices(100, seed=3)
    c = split_indices(100, seed=4)
    assert [t.numel() for t in a] == [60, 20, 20]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    assert torch.equal(torch.sort(torch.cat(a)).values, torch.arange(100))
    assert [t.numel() for t in split_indices(64, 0)] == [38, 12, 14]
    with pytest.raises(DatasetError, match="at least 5"):
        split_indices(4, 0)


def test_imagefolder_source(folder_data: SplitData, image_folder: Path) -> None:
    assert folder_data.name == "imagefolder"
    assert folder_data.num_classes == 3
    assert folder_data.classes == ["class_0", "class_1", "class_2"]
    assert folder_data.image_size == 32
    image, label = folder_data.pool[5]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
    assert label == int(folder_data.targets[5])
    info = folder_data.describe()
    assert (info["num_train"], info["num_val"], info["num_test"]) == (38, 12, 14)
    assert info["spec"]["root"] == str(image_folder)


def test_imagefolder_resizes_and_converts_grayscale(tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("L", (48, 40), color=30 * i).save(tmp_path / label / f"{i}.png")
    data = load_data(DataSpec("ImageFolder", root=str(tmp_path), image_size=16))
    image, _ = data.pool[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.uint8


def test_synthetic_source_is_deterministic_and_balanced() -> None:
    images, targets = make_synthetic(60, 3, 16, seed=1)
    again, _ = make_synthetic(60, 3, 16, seed=1)
    assert images.shape == (60, 3, 16, 16) and images.dtype == torch.uint8
    assert torch.equal(images, again)
    assert torch.bincount(targets).tolist() == [20, 20, 20]
    data = load_data(DataSpec("synthetic", synthetic_images=60, synthetic_classes=3))
    assert data.images is not None and data.image_size == 32 and data.num_classes == 3


def test_unknown_dataset_lists_known_and_suggests() -> None:
    with pytest.raises(DatasetError) as info:
        load_data(DataSpec("cifar-10", root="/nonexistent"))
    message = str(info.value)
    assert "'cifar-10'" in message and "Did you mean 'CIFAR10'" in message
    assert "Flowers102" in message and "synthetic" in message
    assert resolve_dataset_name("flowers102") == "Flowers102"
    assert {"synthetic", "imagefolder", "CIFAR10", "Places365", "SUN397"} <= set(known_datasets())


@pytest.mark.parametrize("name", ["CIFAR10", "imagefolder"])
def test_missing_root(name: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match="does not exist"):
        load_data(DataSpec(name, root=str(missing)))
    with pytest.raises(DatasetError, match="needs a local data root"):
        load_data(DataSpec(name))


def test_torchvision_dataset_not_on_disk_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_data(DataSpec("CIFAR10", root=str(tmp_path)))
    message = str(info.value)
    assert "CIFAR10" in message and "download=False" in message
    assert "downloads nothing unless you pass --download" in message


class _RecordingCIFAR10(torch.utils.data.Dataset):
    """Stands in for torchvision.datasets.CIFAR10 (no internet here): records its arguments."""

    calls: list[dict] = []

    def __init__(self, root: str, train: bool = True, transform=None,
                 download: bool = False) -> None:
        self.calls.append({"root": root, "train": train, "download": download})
        self.targets = [i % 2 for i in range(10)]
        self.classes = ["a", "b"]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return torch.zeros(3, 8, 8), self.targets[index]


@pytest.mark.parametrize("download", [False, True])
def test_download_is_passed_to_torchvision_only_when_asked(tmp_path: Path, monkeypatch,
                                                           download: bool) -> None:
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _RecordingCIFAR10)
    _RecordingCIFAR10.calls = []
    root = tmp_path / "cifar"  # missing: created only for a download
    if not download:
        root.mkdir()
    data = load_data(DataSpec("CIFAR10", root=str(root), download=download))
    assert [c["download"] for c in _RecordingCIFAR10.calls] == [download, download]
    assert [c["train"] for c in _RecordingCIFAR10.calls] == [True, False]
    assert root.is_dir() and data.num_classes == 2 and len(data.targets) == 20


def test_missing_root_without_download_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist.*--download"):
        load_data(DataSpec("CIFAR10", root=str(tmp_path / "missing")))
    assert not (tmp_path / "missing").exists()


def test_imagefolder_flat_layout(tmp_path: Path) -> None:
    for i in range(6):
        Image.new("RGB", (8, 8)).save(tmp_path / f"{i}.png")
    with pytest.raises(DatasetError, match="no class folders .*6 image files"):
        load_data(DataSpec("imagefolder", root=str(tmp_path)))


def test_imagefolder_split_tree_layout(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "train", num_images=6, size=8)
    write_image_folder(tmp_path / "val", num_images=6, size=8)
    with pytest.raises(DatasetError, match="tree of splits") as info:
        load_data(DataSpec("imagefolder", root=str(tmp_path)))
    assert str(tmp_path / "train") in str(info.value)


def test_imagefolder_empty_class_and_single_class(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "one", num_images=5, num_classes=1, size=8)
    with pytest.raises(DatasetError, match="1 class folder"):
        load_data(DataSpec("imagefolder", root=str(tmp_path / "one")))
    root = write_image_folder(tmp_path / "two", num_images=6, num_classes=2, size=8)
    (root / "empty_class").mkdir()
    with pytest.raises(DatasetError, match="'empty_class' contain no image files"):
        load_data(DataSpec("imagefolder", root=str(root)))


class _FakeCIFAR(torch.utils.data.Dataset):
    """Stands in for torchvision.datasets.CIFAR10 (same constructor signature)."""

    calls: list[dict[str, Any]] = []

    def __init__(self, root: str, train: bool = True, transform: Any = None,
                 target_transform: Any = None, download: bool = False) -> None:
        type(self).calls.append({"root": root, "train": train, "download": download})
        self.transform = transform
        n = 7 if train else 5
        self.targets = [(i + (0 if train else 1)) % 4 for i in range(n)]
        self.classes = ["a", "b", "c", "d"]
        self.colour = 10 if train else 200

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.transform(Image.new("RGB", (32, 32), (self.colour,) * 3)), self.targets[index]


def test_torchvision_dataset_concatenates_official_splits(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    _FakeCIFAR.calls = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", _FakeCIFAR)
    data = load_data(DataSpec("cifar10", root=str(tmp_path)))
    assert [c["train"] for c in _FakeCIFAR.calls] == [True, False]
    assert all(c["download"] is False for c in _FakeCIFAR.calls)
    assert data.name == "CIFAR10" and data.image_size == 32 and data.num_classes == 4
    assert data.targets.tolist() == [0, 1, 2, 3, 0, 1, 2, 1, 2, 3, 0, 1]
    assert data.pool[0][0].shape == (3, 32, 32) and int(data.pool[8][0].max()) == 200
    assert (data.train_idx.numel(), data.val_idx.numel(), data.test_idx.numel()) == (7, 2, 3)
    _FakeCIFAR.calls = []
    load_data(DataSpec("CIFAR10", root=str(tmp_path), dataset_kwargs={"train": False}))
    assert [c["train"] for c in _FakeCIFAR.calls] == [False]


def test_train_batch_plan_covers_split_and_drops_singleton() -> None:
    indices = torch.arange(100, 165)  # 65 images
    plan = train_batch_plan(indices, 32, torch.Generator().manual_seed(0))
    assert [b.numel() for b in plan] == [32, 32]  # the 1-image remainder is dropped
    plan = train_batch_plan(indices[:60], 32, torch.Generator().manual_seed(0))
    assert [b.numel() for b in plan] == [32, 28]
    assert torch.equal(torch.sort(torch.cat(plan)).values, indices[:60])
    again = train_batch_plan(indices[:60], 32, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(plan, again))
    assert [b.numel() for b in eval_batch_plan(indices, 30)] == [30, 30, 5]


def test_augment_batch_matches_per_image_crop_and_flip() -> None:
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(5)
    out = augment_batch(images, gen, pad=2)
    ref_gen = torch.Generator().manual_seed(5)
    offsets = torch.randint(0, 5, (6, 2), generator=ref_gen)
    flips = torch.rand(6, generator=ref_gen) < 0.5
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(6):
        oy, ox = offsets[i].tolist()
        crop = padded[i, :, oy:oy + 8, ox:ox + 8]
        if flips[i]:
            crop = crop.flip(-1)
        assert torch.equal(out[i], crop)
    assert out.dtype == torch.uint8 and torch.equal(gen.get_state(), ref_gen.get_state())


def test_tensor_and_loader_pipelines_give_identical_batches(folder_data: SplitData) -> None:
    plan = train_batch_plan(folder_data.train_idx, 16, torch.Generator().manual_seed(1))
    cpu = torch.device("cpu")
    tensor_source = TensorBatchSource(materialize(folder_data), folder_data.targets, cpu)
    loader_source = LoaderBatchSource(folder_data.pool, cpu, num_workers=0)
    pairs = list(zip(tensor_source.iterate(plan), loader_source.iterate(plan)))
    assert len(pairs) == len(plan) == 3
    for (xa, ya), (xb, yb) in pairs:
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    tensor_source.close()
    loader_source.close()


def test_digits_are_scikit_learns_bundled_images_split_60_20_20() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = load_data(DataSpec("digits", image_size=8))
    assert (data.name, data.num_classes, data.image_size) == ("digits", 10, 8)
    assert data.classes == [str(d) for d in range(10)]
    assert data.images is not None and data.images.shape == (1797, 3, 8, 8)
    expected = torch.as_tensor(np.round(bunch.images * 255.0 / 16.0), dtype=torch.uint8)
    for channel in range(3):
        assert torch.equal(data.images[:, channel], expected)
    assert data.targets.tolist() == bunch.target.tolist()
    sizes = [int(i.numel()) for i in (data.train_idx, data.val_idx, data.test_idx)]
    assert sizes == [1078, 359, 360]
    every = torch.cat([data.train_idx, data.val_idx, data.test_idx])
    assert sorted(every.tolist()) == list(range(1797))
    image, label = data.pool[5]
    assert torch.equal(image, data.images[5]) and label == int(bunch.target[5])


def test_digits_default_to_32_px_resized_from_8() -> None:
    small = load_data(DataSpec("digits", image_size=8)).images.float()
    data = load_data("digits")
    assert data.image_size == 32 and data.images.shape == (1797, 3, 32, 32)
    # bilinear upsampling keeps the strokes where they were: the 4x4 block means follow the
    # 8x8 pixels, and each image keeps its brightness
    blocks = torch.nn.functional.avg_pool2d(data.images.float(), 4)
    assert torch.corrcoef(torch.stack([blocks.flatten(), small.flatten()]))[0, 1] > 0.9
    brightness = (blocks.mean(dim=(1, 2, 3)) - small.mean(dim=(1, 2, 3))).abs()
    assert brightness.max() < 1.0  # of 255
    assert resolve_dataset_name("Digits") == "digits" and "digits" in known_datasets()


def test_digits_without_scikit_learn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(DatasetError, match=r"scikit-learn, which is not installed; install it "
                                           r"with pip install 'at2-tune\[digits\]'"):
        load_data(DataSpec("digits"))

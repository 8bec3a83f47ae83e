import pytest
import torch
from PIL import Image

from evaluation import data as datamod
from evaluation.data import Augmenter, DataError, holdout, load_split


def _tiny_folder(root, splits=("train",), per_class=6):
    for split in splits:
        for c in ("cat", "dog"):
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                value = 20 * i + (100 if c == "dog" else 0)
                Image.new("RGB", (8, 8), (value, value, value)).save(root / split / c / f"{i:04d}.png")
    return root


def test_image_folder_is_decoded_once_then_cached(tmp_path, monkeypatch):
    root = _tiny_folder(tmp_path / "set")
    split, classes = load_split(str(root))
    assert classes == ["cat", "dog"] and split.images.shape == (12, 3, 8, 8) and split.images.dtype == torch.uint8
    assert split.labels.tolist() == [0] * 6 + [1] * 6
    monkeypatch.setattr(datamod, "_decode_all", lambda paths: pytest.fail("decoded again"))
    again, _ = load_split(str(root))
    assert torch.equal(again.images, split.images)


def test_search_data_needs_no_test_split(tmp_path):
    """The search loads only train/: a tree without test/ is enough for it."""
    from evaluation.config import DataConfig, EvalConfig
    from evaluation.evaluate import load_data

    root = _tiny_folder(tmp_path / "set", splits=("train",))
    cfg = EvalConfig(data=DataConfig(source=str(root), val_size=4))
    d = load_data(cfg, torch.device("cpu"))
    assert len(d.train) == 8 and len(d.val) == 4
    with pytest.raises(DataError, match="no test/ directory"):
        load_split(str(root), "test")


def test_holdout_is_disjoint_seeded_and_complete(cifar_dir):
    split, _ = load_split(str(cifar_dir), per_class=50)
    train, val = holdout(split, 100, seed=3)
    key = lambda s: {bytes(im.flatten().tolist()) for im in s.images}  # noqa: E731
    assert len(train) == 400 and len(val) == 100
    assert not key(train) & key(val)
    again, _ = holdout(split, 100, seed=3)
    assert torch.equal(again.labels, train.labels)
    other, _ = holdout(split, 100, seed=4)
    assert not torch.equal(other.labels, train.labels)


def test_per_class_subset_is_balanced(cifar_dir):
    split, classes = load_split(str(cifar_dir), per_class=20)
    assert len(classes) == 10 and split.labels.bincount().tolist() == [20] * 10


def test_missing_directory_says_what_to_pass(tmp_path):
    with pytest.raises(DataError, match="--data expects an ImageFolder tree"):
        load_split(str(tmp_path / "nowhere"))


def test_offline_torchvision_download_points_to_local_copy():
    with pytest.raises(DataError, match="--data ../shared/data/cifar10"):
        load_split("cifar10")


def test_augmentation_is_a_padded_crop_maybe_flipped():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    aug = Augmenter(torch.device("cpu"))
    out = aug.augment(images, torch.Generator().manual_seed(0))
    assert out.shape == (16, 3, 32, 32) and out.dtype == torch.float32
    padded = aug.normalize(torch.nn.functional.pad(images, (4, 4, 4, 4)))
    for i in range(16):
        crops = [padded[i, :, y:y + 32, x:x + 32] for y in range(9) for x in range(9)]
        assert any(torch.equal(out[i], c) or torch.equal(out[i], c.flip(-1)) for c in crops)
    assert not torch.equal(out, aug.normalize(images))


def test_resolution_downsamples_by_area_and_sets_the_crop_padding(tmp_path):
    from evaluation.config import DataConfig, EvalConfig
    from evaluation.evaluate import load_data

    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) % 251
    small = datamod.downsample(datamod.Split(images.to(torch.uint8), torch.tensor([0, 1])), 4)
    expected = torch.nn.functional.avg_pool2d(images, 2).round().to(torch.uint8)
    assert small.images.shape == (2, 3, 4, 4) and torch.equal(small.images, expected)
    assert small.labels.tolist() == [0, 1]

    root = _tiny_folder(tmp_path / "set", splits=("train", "test"))
    cfg = EvalConfig(data=DataConfig(source=str(root), val_size=4, resolution=4))
    for test in (False, True):
        d = load_data(cfg, torch.device("cpu"), test=test)
        assert d.train.images.shape[-2:] == (4, 4) and d.val.images.shape[-2:] == (4, 4)
        assert d.augmenter.pad == 1  # an eighth of the side, as 4 is of 32
    batch, _ = next(d.batches(4, seed=0))
    assert batch.shape == (4, 3, 4, 4)


def test_resolution_only_downsamples_and_is_validated(tmp_path):
    from evaluation.config import ConfigError, DataConfig, EvalConfig, validate

    split = datamod.Split(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.tensor([0]))
    with pytest.raises(ValueError, match="resolution 16 exceeds the stored image size 8x8"):
        datamod.downsample(split, 16)
    with pytest.raises(ConfigError, match="resolution"):
        validate(EvalConfig(data=DataConfig(resolution=2)))

"""Image classification data held on the device as uint8, augmented in batches on the device.

Sources: ``cifar10`` / ``cifar100`` through torchvision (downloaded into the cache directory), or
any ImageFolder tree with ``train/`` and ``test/`` sub-directories (``--data PATH``, e.g. the
offline copy ``../shared/data/cifar10``). Decoded images are cached as one ``.pt`` file per split
under the user's cache directory, so JPEGs are decoded once, not per run.

The search sees only the training split, cut into a training part and a held-out validation part
by a seeded permutation; the test split is loaded only when asked for (re-ranking).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# per-channel statistics of CIFAR-10's training images (also used for other sources)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DataError(RuntimeError):
    """The data cannot be found, read or downloaded; the message says what to do."""


def cache_dir() -> Path:
    """``$EVONORM_CACHE``, else ``$XDG_CACHE_HOME/evonorm``, else ``~/.cache/evonorm``."""
    if os.environ.get("EVONORM_CACHE"):
        return Path(os.environ["EVONORM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evonorm"


@dataclass(frozen=True)
class Split:
    """Images ``(N, 3, H, W)`` uint8 and labels ``(N,)`` int64, on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))

    def subset(self, index: torch.Tensor) -> Split:
        return Split(self.images[index], self.labels[index])


def load_split(source: str, split: str = "train", *, per_class: int | None = None) -> tuple[Split, list[str]]:
    """One split (``train`` or ``test``) of ``source`` and its class names, from the cache if there.

    ``per_class`` keeps the first k images of each class (ImageFolder order), for small runs.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if source in ("cifar10", "cifar100"):
        data, classes = _torchvision(source, split)
    else:
        data, classes = _image_folder(Path(source), split)
    if per_class is not None:
        keep = torch.cat([torch.nonzero(data.labels == c).flatten()[:per_class] for c in range(len(classes))])
        data = data.subset(keep.sort().values)
    return data, classes


def _torchvision(name: str, split: str) -> tuple[Split, list[str]]:
    from torchvision import datasets

    root = cache_dir() / "torchvision"
    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        ds = cls(root=str(root), train=split == "train", download=True)
    except Exception as exc:  # URLError, RuntimeError, ... : no network or a broken archive
        raise DataError(f"could not download {name} into {root} ({type(exc).__name__}: {exc}); offline, pass a "
                        "local copy as an ImageFolder tree with train/ and test/ sub-directories, e.g. "
                        "--data ../shared/data/cifar10") from None
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
    return Split(images, torch.as_tensor(ds.targets, dtype=torch.int64)), list(ds.classes)


def _image_folder(root: Path, split: str) -> tuple[Split, list[str]]:
    folder = root / split
    if not folder.is_dir():
        raise DataError(f"no {split}/ directory in {root}: --data expects an ImageFolder tree with train/ and "
                        "test/ sub-directories holding one folder per class, or 'cifar10' / 'cifar100'")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [(f, c) for c, name in enumerate(classes) for f in sorted((folder / name).iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}/<class>/")
    listing = "\n".join(f"{f.relative_to(folder)} {f.stat().st_size}" for f, _ in files)
    digest = hashlib.sha256(f"{folder.resolve()}\n{listing}".encode()).hexdigest()[:16]
    cached = cache_dir() / "decoded" / f"{root.name}-{split}-{digest}.pt"
    if cached.exists():
        blob = torch.load(cached)
        return Split(blob["images"], blob["labels"]), blob["classes"]
    images = _decode_all([f for f, _ in files])
    data = Split(images, torch.tensor([c for _, c in files], dtype=torch.int64))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    torch.save({"images": data.images, "labels": data.labels, "classes": classes}, tmp)
    tmp.replace(cached)  # atomic: a killed run never leaves half a cache
    return data, classes


def _decode_all(paths: list[Path]) -> torch.Tensor:
    def decode(path: Path) -> torch.Tensor:
        with Image.open(path) as im:
            return torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)  # (3, H, W)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        images = list(pool.map(decode, paths, chunksize=256))
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1:
        raise DataError(f"images differ in size ({sorted(shapes)[:3]}...); resize them to one size first")
    return torch.stack(images)


def downsample(data: Split, side: int) -> Split:
    """Every image averaged down to ``side`` x ``side`` pixels (area interpolation, rounded to uint8).

    A cheaper proxy task: convolution and norm-act cost scale with the pixel count. ``side`` may
    not exceed the stored size (this only downsamples).
    """
    h, w = data.images.shape[-2:]
    if side > min(h, w):
        raise ValueError(f"resolution {side} exceeds the stored image size {h}x{w}; it can only downsample")
    if (h, w) == (side, side):
        return data
    chunks = [torch.nn.functional.interpolate(part.float(), size=(side, side), mode="area").round_().to(torch.uint8)
              for part in data.images.split(4096)]
    return Split(torch.cat(chunks), data.labels)


def holdout(data: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    """(train, validation): a seeded permutation of the training split, ``val_size`` held out."""
    if not 0 < val_size < len(data):
        raise ValueError(f"val_size must be in 1..{len(data) - 1} for {len(data)} training images, got {val_size}")
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[val_size:]), data.subset(perm[:val_size])


class Augmenter:
    """Pad-and-crop and horizontal flips on a whole batch at once, then normalisation.

    Works on uint8 images already on the device; returns float32 (N, 3, H, W), channels_last on
    CUDA. Randomness comes from the ``torch.Generator`` passed in (on the images' device).
    """

    def __init__(self, device: torch.device, pad: int = 4) -> None:
        self.pad = pad
        self.mean = torch.tensor(MEAN, device=device).reshape(1, 3, 1, 1) * 255
        self.std = torch.tensor(STD, device=device).reshape(1, 3, 1, 1) * 255
        self.channels_last = device.type == "cuda"

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        out = (images.float() - self.mean) / self.std
        return out.contiguous(memory_format=torch.channels_last) if self.channels_last else out

    def augment(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = images.shape
        p = self.pad
        padded = torch.nn.functional.pad(images, (p, p, p, p))  # (N, 3, H+2p, W+2p), zeros
        dy = torch.randint(0, 2 * p + 1, (n, 1), device=images.device, generator=gen)
        dx = torch.randint(0, 2 * p + 1, (n, 1), device=images.device, generator=gen)
        rows = (dy + torch.arange(h, device=images.device))[:, None, :, None]  # (N, 1, H, 1)
        cols = dx + torch.arange(w, device=images.device)  # (N, W)
        flip = torch.rand(n, 1, device=images.device, generator=gen) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)[:, None, None, :]  # (N, 1, 1, W)
        batch = torch.arange(n, device=images.device)[:, None, None, None]
        chans = torch.arange(3, device=images.device)[None, :, None, None]
        return self.normalize(padded[batch, chans, rows, cols])


def default_val_batch(device: torch.device) -> int:
    """Images per validation batch: 50 on a CPU, 500 on an accelerator. On a CPU a 500-image batch's
    activations overflow the caches: validating 1,000 images in batches of 500 took 1.5-3.6x as
    long as in batches of 50 on the ``cpu`` preset's anchors (``docs/results.md`` §5i). Every layer
    is evaluated per sample in eval mode, so the batch size changes no accuracy beyond rounding."""
    return 50 if torch.device(device).type == "cpu" else 500


class DeviceData:
    """The training and validation parts of a split, resident on one device.

    ``batches`` yields augmented training batches forever (reshuffled each epoch); no DataLoader.
    """

    def __init__(self, train: Split, val: Split, device: torch.device | str, val_batch: int | None = None) -> None:
        self.device = torch.device(device)
        self.val_batch = val_batch or default_val_batch(self.device)  # images per validation batch
        self.train = train.to(self.device)
        self.val = val.to(self.device)
        self.augmenter = Augmenter(self.device, pad=max(1, self.train.images.shape[-1] // 8))  # 4 at 32 px

    def batches(self, batch_size: int, seed: int):
        gen = torch.Generator(device=self.device).manual_seed(seed)
        n = len(self.train)
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} exceeds the {n} training images")
        while True:
            perm = torch.randperm(n, device=self.device, generator=gen)
            for start in range(0, n - batch_size + 1, batch_size):
                idx = perm[start:start + batch_size]
                yield self.augmenter.augment(self.train.images[idx], gen), self.train.labels[idx]

    def val_batches(self, batch_size: int):
        for start in range(0, len(self.val), batch_size):
            end = start + batch_size
            yield self.augmenter.normalize(self.val.images[start:end]), self.val.labels[start:end]

"""The on-device data pipeline against a torchvision DataLoader pipeline, images per second,
measured side by side in one run.

    python benchmarks/data_pipeline.py [--data ../shared/data/cifar10] [--device cpu] [--batches 50]

Both produce the same thing: augmented (4-pixel pad and random crop, horizontal flip) and
normalised float batches of the training images on the device. The DataLoader decodes JPEGs
with PIL in worker processes, as a usual torchvision training script does.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from evaluation.data import MEAN, STD, DeviceData, holdout, load_split
from evaluation.evaluate import resolve_device


def rate(batches, count: int, batch_size: int, device) -> float:
    it = iter(batches)
    next(it)  # start-up (workers, first epoch) is not counted
    start = time.perf_counter()
    for _ in range(count):
        x, _ = next(it)
        x = x.to(device, non_blocking=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count * batch_size / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/cifar10")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=50)
    args = ap.parse_args()
    device = resolve_device(args.device)
    split, _ = load_split(args.data)  # decoded once; from the cache on later runs
    train, val = holdout(split, 5000, 0)
    on_device = DeviceData(train, val, device)
    ours = rate(on_device.batches(args.batch, 0), args.batches, args.batch, device)
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    folder = datasets.ImageFolder(f"{args.data}/train", transform=tf)
    print(f"device {device}, batch {args.batch}, {args.batches} batches each")
    print(f"{'pipeline':<34} {'images/s':>10} {'ratio':>7}")
    print(f"{'on-device uint8 (ours)':<34} {ours:>10.0f} {1.0:>7.2f}")
    for workers in (0, 2):
        loader = DataLoader(folder, batch_size=args.batch, shuffle=True, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        theirs = rate(loader, args.batches, args.batch, device)
        print(f"{f'DataLoader, {workers} workers':<34} {theirs:>10.0f} {theirs / ours:>7.2f}")


if __name__ == "__main__":
    main()

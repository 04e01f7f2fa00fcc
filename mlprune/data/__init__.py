"""Datasets: the synthetic generators (VOC detection, classification crops), the readers (VOC,
VOCdevkit, GTSDB, CIFAR-10, GTSRB), the in-memory dataset, transforms and `check-data`."""

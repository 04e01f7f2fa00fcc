"""Datasets as the stages read them: the readers (VOC, VOCdevkit, GTSDB, CIFAR-10, GTSRB),
the train/validation/test splits of the `data` section, the in-memory datasets and transforms."""

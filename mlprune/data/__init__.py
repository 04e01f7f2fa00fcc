"""Datasets: the synthetic VOC generator, the VOC reader, the in-memory dataset and transforms."""

"""Evaluation: detector predictions, PASCAL VOC scoring and the evaluate stage's metrics."""

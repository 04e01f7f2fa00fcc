"""The embedded datasets the `data` stage generates: scenes of shapes in the Pascal VOC
layout (detection) and shape crops in the CIFAR-10 layout (classification)."""

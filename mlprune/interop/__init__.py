"""Interoperability: start from weights trained elsewhere, hand the result to other runtimes.

- `mlprune.interop.importing.import_model`: a local torchvision `ssd300_vgg16` or
  `vgg16`/`vgg16_bn` state_dict, or one of our checkpoints, as one of our models.
- `mlprune.interop.onnx_export.export_onnx`: a model's network (detector: raw box
  regression and class logits per default box, plus the default boxes; classifier:
  logits) as an ONNX file, and `onnx_latency_ms` to time it in onnxruntime.
"""

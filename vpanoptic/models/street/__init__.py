"""StreetNet, the bundled model: network, inference, grouping, checkpoints, training and data.

- `network`: the StreetNet architecture (semantic, center heatmap and offset heads).
- `inference`: `Predictor` (pre-processing, forward, grouping) and the registry entry
  ``vpanoptic-street`` (`ENTRY`).
- `grouping`: Panoptic-DeepLab grouping and fusion of the outputs, on the device.
- `checkpoint`: the checkpoint format and the bundled weights (``models/weights/``).
- `training`: the training loop (`train`); `data`: samples rendered from the synthetic world.
"""

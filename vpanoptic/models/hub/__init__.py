"""Published pretrained models from their publishers' hubs (DETR, Mask2Former, Mask R-CNN).

- `spec`: `ModelSpec`, everything known about a model before its weights are loaded.
- `zoo`: the published entries' specs (`SPECS`) and label maps.
- `entries`: their registry entries (`ENTRIES`) and factory options.
- `model`: `NetworkModel`, the model loop they share, and the threshold options.
- `hf`: DETR and Mask2Former through Hugging Face `transformers` (extra ``hf``).
- `maskrcnn`: torchvision Mask R-CNN and the Panoptic FPN semantic head.
- `preprocess`: upload, resize and normalisation on the device; `weight_cache`: the weights
  cache, checksums and safe loading.
"""

"""Tiny random-initialised networks of each pretrained family (no download, ever)."""

from __future__ import annotations

import numpy as np
import torch

from vpanoptic.types import Frame


def segments(seg) -> list[tuple[int, bool, int]]:
    """A `PanopticSegments` as [(category, is_thing, area)] in segment-id order."""
    return [
        (int(seg.category_ids[i]), bool(seg.is_thing[i]), int((seg.id_map == i + 1).sum())) for i in range(len(seg))
    ]


def frames(n: int = 2, h: int = 48, w: int = 64, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    return [Frame(i, i, i / 10, 0.0, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for i in range(n)]


def tiny_hf_config(spec):
    """A few-thousand-parameter config of `spec`'s family with the published class count."""
    import transformers as tf

    stages = ["stage1", "stage2", "stage3", "stage4"]
    if spec.family == "detr":
        backbone = tf.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1], layer_type="basic", out_features=stages
        )
        return tf.DetrConfig(
            backbone_config=backbone, use_timm_backbone=False, num_labels=len(spec.labels), d_model=32,
            encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
            encoder_attention_heads=8, decoder_attention_heads=8, num_queries=12,
        )
    backbone = tf.SwinConfig(
        embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4, out_features=stages, image_size=64
    )
    return tf.Mask2FormerConfig(
        backbone_config=backbone,
        num_labels=len(spec.labels),
        num_queries=12,
        hidden_dim=32,
        mask_feature_size=32,
        feature_size=32,
        encoder_feedforward_dim=32,
        dim_feedforward=32,
        decoder_layers=2,
        encoder_layers=1,
        num_attention_heads=2,
    )


def tiny_hf_network(spec, seed: int = 0):
    import transformers as tf

    torch.manual_seed(seed)
    cls = tf.DetrForSegmentation if spec.family == "detr" else tf.Mask2FormerForUniversalSegmentation
    net = cls(tiny_hf_config(spec)).eval()
    if spec.family == "detr":
        _spread_detr_queries(net)
    return net


@torch.no_grad()
def _spread_detr_queries(net) -> None:
    """Make the queries of a random tiny DETR differ.

    At its initial scale every query attends alike, so all mask logits agree to ~1e-7 and
    the pixel argmax is float noise; larger query embeddings, sharper decoder attention and
    a mask head that weighs the per-query attention maps give distinct masks and classes.
    """
    net.detr.model.query_position_embeddings.weight.normal_(0, 1)
    for name, p in net.detr.model.decoder.named_parameters():
        if "q_proj" in name or "k_proj" in name:
            p.mul_(30)
    for p in net.bbox_attention.parameters():
        p.mul_(3)
    heads = net.config.encoder_attention_heads
    net.mask_head.conv1.conv.weight[:, -heads:] *= 300  # the input channels of the attention maps
    for p in net.detr.class_labels_classifier.parameters():
        p.mul_(5)


def tiny_panoptic_fpn(spec, seed: int = 0):
    """A ResNet-18-FPN Mask R-CNN (+ a narrow semantic head for the combined family), random weights."""
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    from vpanoptic.models.hub.maskrcnn import PanopticFPN, SemanticFPNHead

    torch.manual_seed(seed)
    backbone = resnet_fpn_backbone(backbone_name="resnet18", weights=None, trainable_layers=5)
    detector = MaskRCNN(
        backbone, num_classes=len(spec.labels), min_size=64, max_size=128, box_score_thresh=0.0,
        box_detections_per_img=6, rpn_pre_nms_top_n_test=60, rpn_post_nms_top_n_test=30,
    )
    head = None
    if spec.family == "maskrcnn-semantic":
        head = SemanticFPNHead(channels=16, num_classes=len(spec.arch["stuff_labels"]), num_groups=8)
    return PanopticFPN(detector, head).eval()


def check_contract(pf, meta, *, things_only: bool = False, device: str = "cpu") -> None:
    """The output contract every model keeps."""
    assert isinstance(pf.id_map, torch.Tensor) and pf.id_map.device.type == device
    assert pf.id_map.dtype == torch.int32 and tuple(pf.id_map.shape) == pf.frame.image.shape[:2]
    pf.validate()  # every id in the map has a segment
    ids = np.unique(pf.id_map.numpy())
    assert set(ids[ids > 0].tolist()) == set(pf.segment_ids.tolist())  # and every segment has pixels
    meta.check_ids(pf.category_ids)
    np.testing.assert_array_equal(pf.is_thing, meta.is_thing(pf.category_ids))
    assert ((pf.scores >= 0) & (pf.scores <= 1)).all()
    assert (pf.track_ids == -1).all()
    if things_only:
        assert pf.is_thing.all()

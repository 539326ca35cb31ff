"""Random-weight checkpoints whose outputs are well separated, for the committed parity fixtures.

Plain random initialisation gives a detector whose RPN logits and class scores are nearly tied
(torchvision initialises the heads with std 0.01), so parity tests could not tell orderings apart.
This makes them spread, deterministically from a seed:

1. residual branches scaled down (every bottleneck's last norm gets gamma RESIDUAL_SCALE, as
   zero-init-residual training would start): at full gain the random 16-block network is chaotic and
   float32 rounding differences between PyTorch and onnxruntime grow to ~3e-5 relative;
   then batch-norm statistics calibrated on real images (the body, and for C4 the layer4 box head, run
   in train mode with momentum None, i.e. a cumulative average; then frozen into FrozenBatchNorm2d);
2. the RPN head's logits centred and scaled to a standard deviation of RPN_LOGIT_STD (sigmoid far
   from saturation, where float32 scores would tie), its deltas scaled to RPN_DELTA_STD;
3. the box predictor drawn from `trials` seeds over a grid of logit scales and background settings
   (see `choose_box_predictor`); among the draws that give most images at least five detections and
   none the 100-detection cap, the one with the largest minimum score gap wins (gap between
   consecutive detection scores of an image, and distance of any candidate score to the 0.05 threshold).

    /usr/bin/python3 scripts/cpwc/fixture_weights.py --arch cpwc_r50_fpn --width 0.125 --num-classes 6 \\
        --min-size 320 --max-size 512 --seed 0 --images test/fixtures/images/* --out /tmp/tiny-fpn.pt
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import torch
from torch import Tensor, nn
from torchvision.models.detection.rpn import concat_box_prediction_layers

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cpwc.export import decode_image  # noqa: E402
from cpwc.models import build_detector, class_names, detector_config  # noqa: E402
from cpwc.resnet import Bottleneck  # noqa: E402

RESIDUAL_SCALE = 0.25  # bn3 gamma: random residual branches at full gain make float32 rounding grow ~300x
RPN_LOGIT_STD = 1.0
RPN_DELTA_STD = 0.15
BOX_DELTA_STD = 1.5  # raw regression outputs; divided by the box coder weights (10, 10, 5, 5)
CLASS_LOGIT_STDS = (4.0, 6.0, 10.0)
BACKGROUND_GAINS = (2.0, 3.0, 4.0, 5.0)  # background logit = bias + gain * class_std * (r . m) / mean(r . m)
BACKGROUND_BIASES = (0.0, 1.5, 3.0)
MIN_DETECTIONS = 5
CAP_DETECTIONS = 100  # torchvision's detections_per_img: a capped list would depend on a cut-off tie


@torch.no_grad()
def calibrate_batch_norms(model: nn.Module, images: List[Tensor]) -> None:
    """Replaces every BatchNorm2d's running statistics with their average over `images` (batch of one)."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.eval()
    model.backbone.train()
    for image in images:
        batch, _ = model.transform([image])
        model.backbone(batch.tensors)
    model.backbone.eval()
    head_norms = [m for m in model.roi_heads.box_head.modules() if isinstance(m, nn.BatchNorm2d)]
    if head_norms:  # C4: layer4 runs on pooled RoIs
        for image in images:
            batch, _ = model.transform([image])
            features = model.backbone(batch.tensors)
            proposals, _ = model.rpn(batch, features)
            pooled = model.roi_heads.box_roi_pool(features, proposals, batch.image_sizes)
            model.roi_heads.box_head.train()
            model.roi_heads.box_head(pooled)
            model.roi_heads.box_head.eval()
    for norm in norms:
        norm.momentum = 0.1


@torch.no_grad()
def scale_rpn_head(model: nn.Module, images: List[Tensor]) -> None:
    """Scales the RPN head's output convolutions so logits and deltas have the target spread."""
    head = model.rpn.head
    logits, deltas = [], []
    for image in images:
        batch, _ = model.transform([image])
        features = list(model.backbone(batch.tensors).values())
        objectness, regression = head(features)
        logits += [o.flatten() for o in objectness]
        deltas += [d.flatten() for d in regression]
    logits_all = torch.cat(logits)
    head.cls_logits.weight.mul_(RPN_LOGIT_STD / logits_all.std())
    head.cls_logits.bias.copy_(head.cls_logits.bias * RPN_LOGIT_STD / logits_all.std() - logits_all.mean() * RPN_LOGIT_STD / logits_all.std())
    head.bbox_pred.weight.mul_(RPN_DELTA_STD / torch.cat(deltas).std())


@dataclass
class CachedImage:
    """What the box predictor sees for one image, computed once."""

    box_features: Tensor
    proposals: Tensor
    resized: Tuple[int, int]
    original: Tuple[int, int]


@torch.no_grad()
def cache_box_features(model: nn.Module, images: List[Tensor]) -> List[CachedImage]:
    cached = []
    for image in images:
        batch, _ = model.transform([image])
        features = model.backbone(batch.tensors)
        proposals, _ = model.rpn(batch, features)
        pooled = model.roi_heads.box_roi_pool(features, proposals, batch.image_sizes)
        cached.append(CachedImage(model.roi_heads.box_head(pooled), proposals[0], tuple(batch.image_sizes[0]),
                                  (image.shape[1], image.shape[2])))
    return cached


@dataclass
class Separation:
    detections: List[int]
    min_score_gap: float  # between consecutive detection scores within an image
    min_threshold_margin: float  # |candidate score - score_thresh| over every class score of every proposal

    @property
    def worst(self) -> float:
        return min(self.min_score_gap, self.min_threshold_margin)


@torch.no_grad()
def separation(model: nn.Module, cached: List[CachedImage]) -> Separation:
    roi_heads = model.roi_heads
    counts, gaps, margins = [], [], []
    for item in cached:
        logits, regression = roi_heads.box_predictor(item.box_features)
        scores = torch.softmax(logits, -1)[:, 1:]
        margins.append(float((scores - roi_heads.score_thresh).abs().min()))
        _, kept_scores, _ = roi_heads.postprocess_detections(logits, regression, [item.proposals], [item.resized])
        kept = kept_scores[0]
        counts.append(len(kept))
        if len(kept) > 1:
            gaps.append(float((kept[:-1] - kept[1:]).min()))
    return Separation(counts, min(gaps) if gaps else 0.0, min(margins))


def acceptable(result: Separation, images: int) -> bool:
    """At least five detections on all but a quarter of the images, and none at the 100-detection cap."""
    enough = sum(count >= MIN_DETECTIONS for count in result.detections)
    return enough >= images - images // 4 and max(result.detections) < CAP_DETECTIONS


@torch.no_grad()
def choose_box_predictor(model: nn.Module, images: List[Tensor], seed: int, trials: int) -> Separation:
    """Draws the class/box predictor `trials` times over a grid of scales; keeps the best-separated draw.

    The RoI representation's magnitude varies a lot between images (random weights, no normalisation
    after the body), so a plain random classifier gives 0 detections on some images and 100 on others.
    Class weights are therefore made orthogonal to the mean representation m, and the background
    weight is a multiple of m: the background logit grows with the representation's magnitude as the
    class logits do, which keeps detection counts comparable across images."""
    predictor = model.roi_heads.box_predictor
    cached = cache_box_features(model, images)
    representation = torch.cat([c.box_features for c in cached])
    mean_direction = representation.mean(0) / representation.mean(0).norm()
    mean_projection = float((representation @ mean_direction).mean())
    best: Tuple[float, Dict[str, Tensor], Separation] | None = None
    for trial in range(trials):
        generator = torch.Generator().manual_seed(seed * 1000 + trial)
        weight = torch.randn(predictor.cls_score.weight.shape, generator=generator)
        weight[1:] -= (weight[1:] @ mean_direction)[:, None] * mean_direction[None]
        weight[1:] /= (representation @ weight[1:].T).std()
        box_weight = torch.randn(predictor.bbox_pred.weight.shape, generator=generator)
        box_weight *= BOX_DELTA_STD / (representation @ box_weight.T).std()
        predictor.bbox_pred.weight.copy_(box_weight)
        predictor.bbox_pred.bias.zero_()
        for class_std in CLASS_LOGIT_STDS:
            for background_gain in BACKGROUND_GAINS:
                for background_bias in BACKGROUND_BIASES:
                    predictor.cls_score.weight[1:] = weight[1:] * class_std
                    predictor.cls_score.weight[0] = mean_direction * (background_gain * class_std / mean_projection)
                    predictor.cls_score.bias.zero_()
                    predictor.cls_score.bias[0] = background_bias
                    result = separation(model, cached)
                    if acceptable(result, len(images)) and (best is None or result.worst > best[0]):
                        best = (result.worst, {k: v.clone() for k, v in predictor.state_dict().items()}, result)
    if best is None:
        raise RuntimeError("no predictor draw gave acceptable detection counts; try more --trials or another --seed")
    predictor.load_state_dict(best[1])
    return best[2]


@torch.no_grad()
def proposal_scores(model: nn.Module, image: Tensor) -> Tensor:
    """Objectness probabilities of the RPN's final proposals, in proposal order (RegionProposalNetwork.forward)."""
    rpn = model.rpn
    batch, _ = model.transform([image])
    features = list(model.backbone(batch.tensors).values())
    objectness, deltas = rpn.head(features)
    anchors = rpn.anchor_generator(batch, features)
    num_anchors_per_level = [o[0].numel() for o in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(deltas, anchors).view(1, -1, 4)
    _, scores = rpn.filter_proposals(proposals, objectness, batch.image_sizes, num_anchors_per_level)
    return scores[0]


def min_gap(sorted_descending: Tensor) -> float:
    return float((sorted_descending[:-1] - sorted_descending[1:]).min()) if len(sorted_descending) > 1 else float("inf")


def make_fixture_model(arch: str, width: float, num_classes: int, min_size: int, max_size: int, seed: int,
                       images: List[Tensor], trials: int = 6) -> Tuple[nn.Module, Separation]:
    """A frozen-BN detector with calibrated statistics and well-separated heads (see the module docstring)."""
    config = dict(arch=arch, width=width, num_classes=num_classes, min_size=min_size, max_size=max_size)
    torch.manual_seed(seed)
    calibrated = build_detector(**config, norm="bn")
    with torch.no_grad():
        for block in calibrated.modules():
            if isinstance(block, Bottleneck):
                block.bn3.weight.fill_(RESIDUAL_SCALE)
    calibrate_batch_norms(calibrated, images)
    model = build_detector(**config, norm="frozen_bn", trainable_layers=5)
    model.load_state_dict(calibrated.state_dict())  # FrozenBatchNorm2d drops num_batches_tracked
    model.eval()
    scale_rpn_head(model, images)
    return model, choose_box_predictor(model, images, seed, trials)


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="cpwc_r50_fpn")
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--num-classes", type=int, default=6)
    parser.add_argument("--min-size", type=int, default=320)
    parser.add_argument("--max-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=6, help="box predictor draws to choose from")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="calibration images")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    images = [decode_image(p).tensor() for p in args.images]
    model, result = make_fixture_model(args.arch, args.width, args.num_classes, args.min_size, args.max_size,
                                       args.seed, images, args.trials)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({
        "model": model.state_dict(),
        "config": detector_config(model),
        "classes": class_names(args.num_classes),
        "seed": args.seed,
        "training_data": "none: random weights (seed {}), batch norms calibrated and heads scaled on {} "
                         "(scripts/cpwc/fixture_weights.py)".format(args.seed, ", ".join(p.name for p in args.images)),
    }, args.out)
    proposal_gaps = [min_gap(proposal_scores(model, image)) for image in images]
    print(f"wrote {args.out}: detections per image {result.detections}, min detection score gap "
          f"{result.min_score_gap:.2e}, min |class score - 0.05| {result.min_threshold_margin:.2e}, "
          f"min proposal objectness gap per image {['%.1e' % g for g in proposal_gaps]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

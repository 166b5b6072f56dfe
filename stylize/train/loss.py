"""The perceptual loss (Johnson et al. 2016): content, Gram-matrix style, total variation.

All three are measured on VGG16 features of the network's output:

* content: MSE between output and photo features at one layer (relu2_2 by default, where
  shapes survive but colours and textures are free to change; relu3_3, as in Dumoulin et
  al. and Magenta, keeps only the layout and leaves fine texture free to the style);
* style: for each of relu1_2, relu2_2, relu3_3, relu4_3, MSE between the Gram matrix
  of the output and that of the painting, both normalized by C*H*W so that the crop
  size and the painting's size do not change the balance; each layer has its own
  weight, and weight on the deeper layers (larger receptive fields) paints larger motifs;
* total variation: mean squared difference of neighbouring pixels, a mild smoother.

The weights are relative to the Caffe-convention VGG16 (activations ~255x those of
torchvision's); the model cards under ``models/`` say which values each release used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import LossWeights


def gram(features: Tensor) -> Tensor:
    """Gram matrix per sample, normalized by C*H*W, in fp32 (sums of squares overflow fp16).

    Autocast is switched off here: it would run the product in half precision again.
    """
    n, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        f = features.float().reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)


def total_variation(image: Tensor) -> Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels."""
    dh = image[..., 1:, :] - image[..., :-1, :]
    dw = image[..., :, 1:] - image[..., :, :-1]
    return dh.float().pow(2).mean() + dw.float().pow(2).mean()


def distill_loss(student: Tensor, teacher: Tensor, gradient_weight: float) -> dict[str, Tensor]:
    """Pixel L1 and image-difference L1 of ``student`` against ``teacher`` (N, 3, H, W), and their weighted sum."""
    pixel = (student - teacher).abs().mean()
    gradient = sum((d(student) - d(teacher)).abs().mean()
                   for d in (lambda x: x[..., 1:, :] - x[..., :-1, :], lambda x: x[..., 1:] - x[..., :-1]))
    return {"loss": pixel + gradient_weight * gradient, "pixel": pixel, "gradient": gradient}


class PerceptualLoss(nn.Module):
    """Loss of stylized images against their photos and per-sample target styles.

    The Gram matrices of the style paintings are computed once here; a batch may
    mix styles, each sample compared with its own painting.
    """

    def __init__(self, features: nn.Module, style_images: list[Tensor], weights: LossWeights = LossWeights()) -> None:
        super().__init__()
        self.features = features
        self.weights = weights
        with torch.no_grad():
            per_style = [[gram(f)[0] for f in features(img[None])] for img in style_images]
        for layer, grams in enumerate(zip(*per_style)):
            self.register_buffer(f"style_gram{layer}", torch.stack(grams), persistent=False)
        self.n_layers = len(per_style[0])

    def style_grams(self, layer: int) -> Tensor:
        return getattr(self, f"style_gram{layer}")

    def forward(self, output: Tensor, photo: Tensor, style: Tensor, per_sample: bool = False) -> dict[str, Tensor]:
        """Loss terms for ``output`` (N,3,H,W) made from ``photo`` in styles ``style`` (N,).

        Returns the weighted terms and their sum under ``total``; with ``per_sample``, also
        ``style_each`` (N,), each sample's weighted style term (their mean is ``style``), so a
        training log can follow every style: a mean over mixed styles can fall while some of
        them fall apart.
        """
        out_feats = self.features(output)
        layer = self.weights.content_index
        with torch.no_grad():
            photo_feat = self.features(photo, taps=layer + 1)[layer]
        content = F.mse_loss(out_feats[layer].float(), photo_feat.float())
        style_each = self.weights.style * sum(
            w * (gram(f) - self.style_grams(i)[style]).square().mean(dim=(1, 2))
            for i, (w, f) in enumerate(zip(self.weights.style_layers, out_feats)) if w
        )
        terms = {
            "content": self.weights.content * content,
            "style": style_each.mean(),
            "tv": self.weights.tv * total_variation(output),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        if per_sample:
            terms["style_each"] = style_each
        return terms

"""Training: the loop, adding styles, the perceptual loss, VGG16, data, previews, evaluation."""

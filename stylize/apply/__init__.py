"""Applying a trained network: opening a model, the torch and ONNX Runtime renderers, tiling, batches, video."""

"""The network and its checkpoints: architecture, norm layers, styles, edits, ONNX export."""

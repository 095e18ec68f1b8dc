"""Exporting a trained run for deployment: an int8 checkpoint, or ONNX graphs."""

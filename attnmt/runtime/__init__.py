"""Models run by another engine behind the model interface: ONNX exports on onnxruntime."""

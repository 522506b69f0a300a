"""Inference and deployment: tiled restoration, the ``restore`` API/CLI, ONNX export and INT8 quantization.

Submodules are imported on use (``kdrestore.deploy.restore``, ``.tiling``, ``.export``) so that
``import kdrestore`` stays light and onnx/onnxruntime stay optional.
"""

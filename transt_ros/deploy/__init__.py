"""Taking a model to where robots run: ``transt-export`` (ONNX of both steps, checked against PyTorch;
int8 calibration on generated scenes) and the helpers the CLIs use to build a tracker on any backend."""

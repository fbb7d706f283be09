"""Inference runtimes beside PyTorch: ONNX export of the network steps and compiled models
(OpenVINO, ONNX Runtime, TensorRT) that a :class:`~transt_ros.tracking.Tracker` runs through
``backend=``. ROS-free; every runtime package is imported lazily, only when its backend is asked for."""

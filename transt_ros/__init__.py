"""TransT visual object tracking for ROS 2, with a ROS-free core.

The generated ROS interfaces (``transt_ros.msg``, ``transt_ros.srv``) may be installed
under a different prefix than these sources (standalone build); ``extend_path`` lets
both halves of the package be imported as one.

Layers (each imports only those to its left; test/test_layers.py checks it):
common <- model <- checkpoint <- runtimes <- tracking <- {training, bags, ros} <- deploy <- evaluation <- demo.
Only ``ros/`` and the live evaluation import rclpy.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = '0.1.0'

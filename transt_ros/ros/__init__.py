"""The ROS 2 layer: message conversion, parameters, the model manager and tracker nodes, bringup.

Only :mod:`.image_conversion` and :mod:`.targeting` work without rclpy; the other modules import it.
"""

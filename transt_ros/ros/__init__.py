"""The ROS 2 layer: message conversion, parameters, the model manager and tracker nodes, bringup.

Without rclpy: :mod:`.image_conversion`, :mod:`.targeting` and the tracker node's ROS-free parts
(:mod:`.frame_buffer`, :mod:`.request_order`, :mod:`.track_engine`, :mod:`.processing_stats`,
:mod:`.tracker_settings`, :mod:`.model_handle`); the other modules import it.
"""

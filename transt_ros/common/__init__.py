"""Helpers with one home, shared by every layer; this package imports nothing else of the project.

- :mod:`.benchmark_annotations`: the GOT-10k, LaSOT and TrackingNet annotation readers, one per
  format for training and evaluation (strict: errors name the file and the line);
- :mod:`.box_files`: box, flag and value files (``x,y,w,h`` per line);
- :mod:`.files`: atomic file writes (temp file in the same folder, fsync, rename, mode 0o644);
- :mod:`.images`: reading an image file as RGB;
- :mod:`.ros_environment`: node names, the ROS domain-id choice and the OpenMP wait policy
  (plain strings and environment dicts: no rclpy);
- :mod:`.seeds`: the seeds of the generated training scenes and of the held-out demo.
"""

"""Benchmark and bag evaluation of single-object trackers.

ROS-free (data sets):

* :mod:`.metrics`: IoU, centre errors, success / precision curves, AO / SR, speed, latency.
* :mod:`.datasets`: OTB-100, LaSOT, GOT-10k, TrackingNet, UAV123 and NFS readers; result and
  submission writers (the toolkits' layouts).
* :mod:`.run_dataset`: one-pass evaluation of a tracker over sequences, optionally in parallel.
* :mod:`.scoring`: runs -> figures, for data-set and bag sequences alike.
* :mod:`.dataset_evaluation`: ``transt-eval dataset`` (runs, resume, submissions, report).
* :mod:`.reference_trackers`: OpenCV CSRT / KCF / MIL baselines behind the tracker interface.
* :mod:`.report`: JSON, plots, overlay videos and comparison tables.

Tracking bags (need the ROS 2 Python environment for CDR):

* :mod:`.make_bag`: ``transt-make-bag``, sequences -> a tracking bag.
* :mod:`.multi_object_scenes`: generated scenes with several targets -> a multi-object tracking bag
  (Detection2DArray ground truth, one id per target; each target is scored as a sequence).
* :mod:`.tracking_bag`: reading a tracking bag (images, ground truth matched by stamp, sequences).
* :mod:`.offline_run`: every image through in-process trackers.
* :mod:`.live_run`: the bag through the real nodes over DDS (the only rclpy module here).
* :mod:`.bag_evaluation`: ``transt-eval bag`` (runs, resume, report).
"""

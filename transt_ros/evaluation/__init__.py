"""Benchmark evaluation of single-object trackers, ROS-free.

* :mod:`.metrics`: IoU, centre errors, success / precision curves, AO / SR, latency.
* :mod:`.datasets`: OTB-100, LaSOT, GOT-10k, TrackingNet, UAV123 and NFS readers; result and
  submission writers.
* :mod:`.run_dataset`: one-pass evaluation of a tracker over sequences, optionally in parallel.
* :mod:`.reference_trackers`: OpenCV CSRT / KCF / MIL baselines behind the tracker interface.
* :mod:`.report`: JSON, plots, overlay videos and comparison tables.
"""

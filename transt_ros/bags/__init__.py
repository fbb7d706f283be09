"""rosbag2 bags (MCAP and sqlite3) without rosbag2: reading and writing. A leaf: it imports no other
part of the project but :mod:`transt_ros.common`.

* :mod:`.bag`: ``create_bag`` / ``open_bag`` (storage files, split bags, compressed bags).
* :mod:`.storage`: the storage-independent reader and writer the storages subclass.
* :mod:`.mcap_io`, :mod:`.sqlite_io`: the two storages, as rosbag2's plugins lay them out.
* :mod:`.compression`: rosbag2's zstd compression, per message or per file.
* :mod:`.rosbag2`: message definitions, type hashes, QoS offers, ``metadata.yaml``.
* :mod:`.messages`: numpy -> Image, CompressedImage, CameraInfo, Detection2D, and back for boxes.

CDR (de)serialisation uses rclpy and the installed message classes, so decoding needs a ROS 2
Python environment (``source scripts/env.sh``), unlike the ROS-free core. Tracking bags (the
layout ``transt-make-bag`` writes, and reading them for evaluation) live in :mod:`transt_ros.evaluation`.
"""
from .bag import create_bag, open_bag
from .rosbag2 import BagError, RawMessage, TopicInfo
from .storage import BagReader, BagWriter

__all__ = ['BagError', 'BagReader', 'BagWriter', 'RawMessage', 'TopicInfo', 'create_bag', 'open_bag']

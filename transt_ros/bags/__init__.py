"""rosbag2 bags (MCAP and sqlite3) without rosbag2: reading, writing, tracking-bag conversion.

* :mod:`.bag`: ``create_bag`` / ``open_bag`` and the storage-independent reader and writer.
* :mod:`.mcap_io`, :mod:`.sqlite_io`: the two storages, as rosbag2's plugins lay them out.
* :mod:`.rosbag2`: message definitions, type hashes, QoS offers, ``metadata.yaml``.
* :mod:`.messages`: numpy <-> Image, CompressedImage, CameraInfo, Detection2D.
* :mod:`.convert`: ``transt-make-bag``, sequences (folders, benchmarks, generated scenes) -> bag.

CDR (de)serialisation uses rclpy and the installed message classes, so this package needs a ROS 2
Python environment (``source scripts/env.sh``), unlike the ROS-free core.
"""
from .bag import BagReader, BagWriter, create_bag, open_bag
from .rosbag2 import BagError, RawMessage, TopicInfo

__all__ = ['BagError', 'BagReader', 'BagWriter', 'RawMessage', 'TopicInfo', 'create_bag', 'open_bag']

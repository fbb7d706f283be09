"""The nodes' parameters: one table per node, declared with full ``ParameterDescriptor``s.

The tables (:data:`MODEL_MANAGER_PARAMETERS`, :data:`TRACKER_PARAMETERS`) are the single source
of the parameter names, defaults, ranges and descriptions; ``config/transt.yaml``, the launch file
and ``docs/ros.md`` are checked against them by the tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from ..runtimes.backends import ALL_PRECISIONS, BACKENDS
from ..tracking.track_registry import MAX_TARGETS_LIMIT

RELIABILITIES = {'best_effort': ReliabilityPolicy.BEST_EFFORT, 'reliable': ReliabilityPolicy.RELIABLE}
AUTO_RELIABILITY = 'auto'
IMAGE_RELIABILITIES = (AUTO_RELIABILITY, *RELIABILITIES)
MAX_LABEL_LENGTH = 256
DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096
SERVICE_QUEUE_DEPTH = 100
"""Request queue of the tracker's services. rclpy's default (depth 10, keep last) silently drops
requests beyond the 10th that wait while one is served: 500 SetTarget calls sent at once got 10
answers. A deeper queue answers bursts from many clients (each call still gets its own answer)."""
IMAGE_TRANSPORTS = ('raw', 'compressed')
DEVICES_HINT = "'cpu', 'cuda' or 'cuda:N'"


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: its name, default (which fixes its type) and how it may be set.

    ``value_range``: (low, high) for numbers, both inclusive. ``choices``: allowed string values.
    ``read_only``: fixed after start-up (set it in the YAML or on the command line).
    """

    name: str
    default: Any
    description: str
    read_only: bool = False
    value_range: tuple | None = None
    choices: tuple[str, ...] = ()
    constraints: str = ''
    max_length: int | None = None

    def descriptor(self) -> ParameterDescriptor:
        constraints = self.constraints
        if self.choices:
            constraints = ' '.join(filter(None, [f'one of: {", ".join(self.choices)}.', constraints]))
        if self.max_length is not None:
            constraints = ' '.join(filter(None, [f'at most {self.max_length} characters.', constraints]))
        descriptor = ParameterDescriptor(name=self.name, description=self.description,
                                         additional_constraints=constraints, read_only=self.read_only)
        if self.value_range is not None:
            low, high = self.value_range
            if isinstance(self.default, bool):
                raise TypeError(f'{self.name}: a bool parameter has no range')
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)]
        return descriptor

    def check(self, value) -> str | None:
        """Why ``value`` is not allowed (beyond the descriptor's own range checks), or None."""
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}, got '{value}'"
        if self.max_length is not None and len(value) > self.max_length:
            return f'{self.name} must be at most {self.max_length} characters, got {len(value)}'
        return None


MODEL_MANAGER_PARAMETERS = (
    ParameterSpec('checkpoint', '', 'Path of the TransT checkpoint (.pth), read on configure. '
                  "The project's format, the authors' transt.pth or a bare state dict."),
    ParameterSpec('device', 'cpu', f'Torch device, read on configure: {DEVICES_HINT}. '
                  'Configure fails if the device is not available.'),
    ParameterSpec('precision', 'fp32', 'Inference precision, read on configure: fp32 (exact) on every backend; '
                  'fp16 on CUDA (torch, tensorrt); bf16 on CUDA (torch) or a CPU with bf16 (openvino); '
                  'int8 on openvino (quantise once per checkpoint first: transt-export CHECKPOINT DIR --int8).',
                  choices=ALL_PRECISIONS),
    ParameterSpec('backend', 'auto', 'Inference runtime, read on configure: auto (openvino on the CPU when it '
                  'is installed, torch with CUDA graphs on CUDA), torch, openvino, onnxruntime (CPU) or tensorrt '
                  '(CUDA). Compiled models are cached on disk per checkpoint (TRANST_CACHE_DIR, default '
                  '~/.cache/transt_ros).', choices=BACKENDS),
    ParameterSpec('cuda_graph', True, 'Read on configure. On a CUDA device with the torch backend the tracker '
                  'runs its whole step (crop, network, decode) as CUDA graphs, shared by all targets; ignored '
                  'on the CPU and on the other backends.'),
    ParameterSpec('allow_tf32', False, 'Read on configure. Let CUDA matmuls/convolutions use TF32 inside the '
                  "tracker's calls (faster in fp32, less exact; see the README's precision table)."),
    ParameterSpec('autostart', True, 'Configure and activate on start-up (from a timer, once spinning; '
                  'does not wait for /clock).', read_only=True),
)

TRACKER_PARAMETERS = (
    ParameterSpec('image_topic', 'image', 'Input image topic (sensor_msgs/Image); with image_transport '
                  "'compressed' the node subscribes <image_topic>/compressed (sensor_msgs/CompressedImage).",
                  read_only=True),
    ParameterSpec('image_transport', 'raw', 'How images arrive.', read_only=True, choices=IMAGE_TRANSPORTS),
    ParameterSpec('image_qos_reliability', AUTO_RELIABILITY, 'Reliability of the image subscription. '
                  'auto: what the publishers offer (reliable when all of them are reliable: large frames '
                  'from a reliable camera are then repaired instead of lost), re-checked when publishers '
                  'change. best_effort also receives from reliable publishers.', read_only=True,
                  choices=IMAGE_RELIABILITIES),
    ParameterSpec('image_qos_depth', 1, 'History depth of the image subscription (the node only ever '
                  'processes the newest frame).', read_only=True, value_range=(1, 100)),
    ParameterSpec('camera_info_topic', '', 'sensor_msgs/CameraInfo topic used to project RViz clicks; '
                  "empty: 'camera_info' next to image_topic.", read_only=True),
    ParameterSpec('mouse_click_topic', '', 'geometry_msgs/Point clicks in pixels (rqt_image_view); '
                  'empty: <image_topic>_mouse_left.', read_only=True),
    ParameterSpec('clicked_point_topic', '/clicked_point', 'geometry_msgs/PointStamped clicks (RViz '
                  '"Publish Point"); used when in the camera frame.', read_only=True),
    ParameterSpec('frame_buffer_size', 30, 'Recent frames kept for SetTarget requests with a stamp.',
                  read_only=True, value_range=(1, 1000)),
    ParameterSpec('diagnostics_period', 1.0, 'Period of /diagnostics (and of ~/status when no frame '
                  'arrives) [s].', read_only=True, value_range=(0.1, 60.0)),
    ParameterSpec('max_image_pixels', DEFAULT_MAX_IMAGE_PIXELS, 'Images with more pixels (width x height) are '
                  'dropped before decoding (compressed: read from the header), with a warning.',
                  value_range=(1, 1 << 30)),
    ParameterSpec('input_timeout', 3.0, 'A publisher on the image topic and no frame for this long is '
                  'reported (log and /diagnostics) [s].', value_range=(0.5, 600.0)),
    ParameterSpec('catch_up_timeout', 2.0, 'Longest time a SetTarget with a stamp spends tracking the '
                  'buffered frames after it; the reply says when it was cut short [s].', value_range=(0.0, 60.0)),
    ParameterSpec('max_targets', 1, 'Most tracks at once, tracked with one batched forward per frame. 1: a new '
                  'target replaces the current one; above 1: a new target starts another track (refused once '
                  'max_targets tracks exist).', read_only=True, value_range=(1, MAX_TARGETS_LIMIT)),
    ParameterSpec('lost_track_timeout', 0.0, 'Drop a track once it has been LOST for this long [s]; 0: never.',
                  value_range=(0.0, 86400.0)),
    ParameterSpec('label', 'target', 'class_id of the published detections.', max_length=MAX_LABEL_LENGTH),
    ParameterSpec('lost_threshold', 0.3, 'Score below which a frame counts as low.', value_range=(0.0, 1.0),
                  constraints='<= recover_threshold.'),
    ParameterSpec('recover_threshold', 0.5, 'Score at or above which a LOST target is TRACKING again.',
                  value_range=(0.0, 1.0), constraints='>= lost_threshold.'),
    ParameterSpec('lost_frames', 5, 'Consecutive low frames after which the target is LOST.',
                  value_range=(1, 10000)),
    ParameterSpec('window_influence', 0.49, 'Weight of the cosine window in the score (motion prior).',
                  value_range=(0.0, 1.0)),
    ParameterSpec('reacquire', True, 'While a track is LOST, search wider for it: a growing window, then the '
                  'whole frame in tiles (at most 10 crops more per frame); a candidate scoring recover_threshold '
                  'or more outside the usual window, of the target\'s colours and found again on the next frame, '
                  'takes over. false: the authors\' search only.'),
    ParameterSpec('reacquire_max_tiles', 9, 'Most whole-frame tiles searched per LOST frame, each one more crop '
                  'through the network (the tiles take turns over the frames): a LOST frame costs at most '
                  '2 + this many crops.', value_range=(1, 64)),
    ParameterSpec('click_box_size', 64, 'Side of the square box a single click sets [px].',
                  value_range=(4, 4096)),
    ParameterSpec('double_click_timeout', 1.0, 'Two clicks within this time set a box by its corners [s].',
                  value_range=(0.0, 10.0)),
    ParameterSpec('depth_topic', '', 'Depth image aligned to the colour image (sensor_msgs/Image, 16UC1 mm or '
                  '32FC1 m, same size): each track gets a 3D position (~/detections_3d, ~/target_point); '
                  'empty: off.', read_only=True),
    ParameterSpec('depth_qos_reliability', AUTO_RELIABILITY, 'Reliability of the depth subscription (as '
                  'image_qos_reliability).', read_only=True, choices=IMAGE_RELIABILITIES),
    ParameterSpec('depth_buffer_size', 10, 'Recent depth images kept to match colour frames by stamp.',
                  read_only=True, value_range=(1, 100)),
    ParameterSpec('depth_stamp_tolerance', 0.02, 'Largest stamp difference between a colour frame and its '
                  'depth image [s].', value_range=(0.0, 1.0)),
    ParameterSpec('depth_min_range', 0.1, 'Nearer depths are invalid [m].', value_range=(0.0, 100.0)),
    ParameterSpec('depth_max_range', 20.0, 'Farther depths are invalid [m].', value_range=(0.01, 1000.0)),
    ParameterSpec('depth_min_valid_fraction', 0.2, 'Share of the box centre that must hold valid depths for a '
                  '3D position.', value_range=(0.01, 1.0)),
)

AUTOMATIC_PARAMETERS = ('use_sim_time', 'start_type_description_service')
"""Declared by rclpy itself on every node."""


def parameter_names(specs) -> set[str]:
    return {spec.name for spec in specs}


def all_parameter_names() -> set[str]:
    """Every parameter the bringup's nodes declare (the YAML and launch file may set these)."""
    return parameter_names(MODEL_MANAGER_PARAMETERS) | parameter_names(TRACKER_PARAMETERS) | set(
        AUTOMATIC_PARAMETERS)


def declare_parameters(node, specs) -> dict[str, Any]:
    """Declare ``specs`` on ``node``; return {name: value}. Raises ValueError on a bad choice."""
    values = {}
    for spec in specs:
        value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        problem = spec.check(value)
        if problem:
            raise ValueError(f'invalid parameter: {problem}')
        values[spec.name] = value
    return values


def service_qos() -> QoSProfile:
    """The tracker's services: reliable, keep last :data:`SERVICE_QUEUE_DEPTH` requests."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=SERVICE_QUEUE_DEPTH,
                      reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def qos_profile(reliability: str, depth: int) -> QoSProfile:
    """Keep-last QoS from the named reliability ('best_effort' | 'reliable') and a depth."""
    if reliability not in RELIABILITIES:
        raise ValueError(f"reliability must be one of {', '.join(RELIABILITIES)}, got '{reliability}'")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=RELIABILITIES[reliability], durability=DurabilityPolicy.VOLATILE)


def sibling_topic(topic: str, name: str) -> str:
    """``'/cam/image_raw', 'camera_info'`` -> ``'/cam/camera_info'`` (``'image'`` -> ``'camera_info'``)."""
    head, _, _ = topic.rpartition('/')
    return f'{head}/{name}' if head or topic.startswith('/') else name

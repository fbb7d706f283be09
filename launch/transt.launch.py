"""Start transt_ros: transt_model_manager (lifecycle) and transt_tracker in one process.

    ros2 launch transt_ros transt.launch.py checkpoint:=/path/transt.pth image_topic:=/camera/image_raw

Parameters come from ``params_file`` (default: the installed config/transt.yaml); the arguments
image_topic, checkpoint, device, autostart and use_sim_time are set on top of it (they win).
Every other parameter comes from ``params_file``: e.g. the manager's ``precision`` (fp32 default),
``cuda_graph`` (true: CUDA graphs on a CUDA device, ignored on the CPU) and ``allow_tf32`` (false),
the tracker's ``max_targets`` (1..64, default 1) and ``lost_track_timeout`` (0 = never); see
config/transt.yaml and docs/ros.md.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.launch_description import LaunchDescription
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    default_params_file = os.path.join(get_package_share_directory('transt_ros'), 'config', 'transt.yaml')
    arguments = [
        DeclareLaunchArgument('params_file', default_value=default_params_file,
                              description='YAML file with the parameters of both nodes'),
        DeclareLaunchArgument('image_topic', default_value='image', description='Input image topic'),
        DeclareLaunchArgument('checkpoint', default_value='', description='TransT checkpoint file (.pth)'),
        DeclareLaunchArgument('device', default_value='cpu', description="Torch device: cpu, cuda, cuda:N"),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure and activate the model manager on start-up'),
        DeclareLaunchArgument('namespace', default_value='', description='Namespace of both nodes'),
        DeclareLaunchArgument('log_level', default_value='info', description='Logging level'),
        DeclareLaunchArgument('use_sim_time', default_value='false', description='Use /clock time'),
    ]
    bringup = Node(
        package='transt_ros',
        executable='transt_bringup',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        parameters=[
            LaunchConfiguration('params_file'),
            {
                'image_topic': ParameterValue(LaunchConfiguration('image_topic'), value_type=str),
                'checkpoint': ParameterValue(LaunchConfiguration('checkpoint'), value_type=str),
                'device': ParameterValue(LaunchConfiguration('device'), value_type=str),
                'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool),
                'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool),
            },
        ],
        ros_arguments=['--log-level', LaunchConfiguration('log_level')],
    )
    return LaunchDescription(arguments + [bringup])

"""Start transt_ros: transt_model_manager (lifecycle node) and transt_tracker (plain node) in one process.

    ros2 launch transt_ros transt.launch.py checkpoint:=/path/transt.pth image_topic:=/camera/image_raw max_targets:=4

Parameters come from ``params_file`` (default: the installed config/transt.yaml). Every parameter of
both nodes is also a launch argument (``--show-args`` lists them): one given on the command line is set
on top of ``params_file``; one left out keeps the ``params_file`` value. An argument this file does
not declare is refused (``check_arguments:=false`` turns that off). The rules are in
transt_ros/common/launch_arguments.py; parameters and defaults: config/transt.yaml and docs/ros.md.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.launch_description import LaunchDescription
from launch_ros.actions import Node

from transt_ros.common.launch_arguments import USE_SIM_TIME, bringup_node_settings, launch_arguments
from transt_ros.ros.parameters import MODEL_MANAGER_PARAMETERS, TRACKER_PARAMETERS

PARAMETERS = (*MODEL_MANAGER_PARAMETERS, *TRACKER_PARAMETERS, USE_SIM_TIME)


def start_bringup(context):
    """The bringup node, with the launch arguments that were given set on top of ``params_file``."""
    settings = bringup_node_settings(PARAMETERS, context.launch_configurations, context.argv)
    return [Node(package='transt_ros', executable='transt_bringup', output='screen', **settings)]


def generate_launch_description():
    default_params_file = os.path.join(get_package_share_directory('transt_ros'), 'config', 'transt.yaml')
    arguments = [DeclareLaunchArgument(argument.name, default_value=argument.default_value,
                                       description=argument.description)
                 for argument in launch_arguments(PARAMETERS, default_params_file)]
    return LaunchDescription([*arguments, OpaqueFunction(function=start_bringup)])

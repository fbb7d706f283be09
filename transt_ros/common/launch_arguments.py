"""The arguments of ``launch/transt.launch.py``, as plain data (no launch, no rclpy: testable anywhere).

Every parameter the two nodes declare is a launch argument with an empty default:

- given (``max_targets:=4``): converted to the parameter's type and set on top of ``params_file``;
- left out (or given empty): not passed, so the ``params_file`` value (else the node's default) holds;
- a name on the ``ros2 launch`` command line that the launch file does not declare is refused with
  :class:`LaunchArgumentError`, naming it and the declared ones (``check_arguments:=false`` turns this
  off, for a parent launch file whose own arguments are on the command line).

``params_file``, ``namespace``, ``log_level`` and ``check_arguments`` are the launch file's own
(:data:`LAUNCH_ONLY_ARGUMENTS`). The parameter tables come from the caller (the launch file passes
``transt_ros.ros.parameters``' tables and :data:`USE_SIM_TIME`), so this module imports nothing of the
project.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PARAMS_FILE = 'params_file'
NAMESPACE = 'namespace'
LOG_LEVEL = 'log_level'
CHECK_ARGUMENTS = 'check_arguments'
LAUNCH_ONLY_ARGUMENTS = (PARAMS_FILE, NAMESPACE, LOG_LEVEL, CHECK_ARGUMENTS)
ROS2_LAUNCH_ARGUMENTS = ('launch-prefix', 'launch-prefix-filter')
"""What ``ros2 launch --launch-prefix`` / ``--launch-prefix-filter`` add to the launch arguments."""
TRUE_WORDS, FALSE_WORDS = ('true',), ('false',)


@dataclass(frozen=True)
class ParameterArgument:
    """A parameter without a ``ParameterSpec`` (``use_sim_time``, which rclpy declares on every node)."""

    name: str
    default: Any
    description: str


USE_SIM_TIME = ParameterArgument('use_sim_time', False, 'Use /clock time (declared by rclpy on both nodes).')


@dataclass(frozen=True)
class LaunchArgument:
    """One ``DeclareLaunchArgument``."""

    name: str
    default_value: str
    description: str


class LaunchArgumentError(ValueError):
    """A launch argument the launch file refuses: unknown, or not of its parameter's type."""


def format_value(value) -> str:
    """A parameter value as written on the command line (and in docs/ros.md): true, 0.49, ''."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return "''" if value == '' else str(value)


def launch_arguments(parameters: Iterable, default_params_file: str) -> list[LaunchArgument]:
    """The launch file's arguments: its own four, then one per parameter (empty default).

    ``parameters``: objects with ``name``, ``default`` and ``description`` (``ParameterSpec``s).
    """
    arguments = [
        LaunchArgument(PARAMS_FILE, default_params_file,
                       'YAML file with the parameters of both nodes; the parameter arguments below are set on '
                       'top of it'),
        LaunchArgument(NAMESPACE, '', 'Namespace of both nodes'),
        LaunchArgument(LOG_LEVEL, 'info', 'Logging level of both nodes (debug, info, warn, error, fatal)'),
        LaunchArgument(CHECK_ARGUMENTS, 'true',
                       'Refuse a launch argument on the command line that this file does not declare (a typo); '
                       'false when a parent launch file with arguments of its own includes this one'),
    ]
    for spec in parameters:
        arguments.append(LaunchArgument(
            spec.name, '', f'{spec.description} Not given or empty: the params_file value '
                           f'(node default: {format_value(spec.default)}).'))
    return arguments


def parameter_value(name: str, text: str, default):
    """``text`` (from ``name:=text``) as a value of the type of ``default``; raises LaunchArgumentError."""
    if isinstance(default, bool):
        word = text.strip().lower()
        if word in TRUE_WORDS + FALSE_WORDS:
            return word in TRUE_WORDS
        expected = 'true or false'
    elif isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            expected = 'an integer'
    elif isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            expected = 'a number'
    else:
        return text
    raise LaunchArgumentError(f"launch argument {name}:={text}: expected {expected} (parameter '{name}', "
                              f'default {format_value(default)})')


def given_parameters(parameters: Iterable, configurations: Mapping[str, str]) -> dict[str, Any]:
    """{name: typed value} of the parameter arguments that were given (non-empty)."""
    given = {}
    for spec in parameters:
        text = configurations.get(spec.name, '')
        if text != '':
            given[spec.name] = parameter_value(spec.name, text, spec.default)
    return given


def unknown_arguments(argv: Sequence[str], declared: Iterable[str]) -> list[str]:
    """The names of ``name:=value`` items of ``argv`` that are neither declared nor ros2 launch's own."""
    known = set(declared) | set(ROS2_LAUNCH_ARGUMENTS)
    names = [item.split(':=', 1)[0] for item in argv if ':=' in item]
    return [name for name in dict.fromkeys(names) if name not in known]


def bringup_node_settings(parameters: Sequence, configurations: Mapping[str, str],
                          argv: Sequence[str] = ()) -> dict[str, Any]:
    """The bringup ``Node``'s ``namespace``, ``parameters`` and ``ros_arguments`` from the launch configurations.

    ``parameters``: as for :func:`launch_arguments`. ``argv``: the ``ros2 launch`` command line's
    ``name:=value`` items (``LaunchContext.argv``), checked unless ``check_arguments`` is false.
    """
    if parameter_value(CHECK_ARGUMENTS, configurations.get(CHECK_ARGUMENTS, 'true'), True):
        declared = [*LAUNCH_ONLY_ARGUMENTS, *(spec.name for spec in parameters)]
        unknown = unknown_arguments(argv, declared)
        if unknown:
            raise LaunchArgumentError(
                f"unknown launch argument(s) {', '.join(unknown)} for transt.launch.py; its arguments are "
                f"{', '.join(declared)} (ros2 launch transt_ros transt.launch.py --show-args)")
    given = given_parameters(parameters, configurations)
    return {
        'namespace': configurations.get(NAMESPACE, ''),
        # later entries win: the given arguments over params_file
        'parameters': [configurations[PARAMS_FILE], *([given] if given else [])],
        'ros_arguments': ['--log-level', configurations.get(LOG_LEVEL, 'info')],
    }

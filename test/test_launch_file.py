"""launch/transt.launch.py, config/transt.yaml and docs/ros.md against the parameters the nodes really declare.

launch / launch_ros have no wheels here, so the launch file runs against small stand-ins of the four
classes it uses (``DeclareLaunchArgument``, ``OpaqueFunction``, ``LaunchDescription``, ``Node``) that
record their arguments. :func:`launch` then does what ``ros2 launch`` and launch_ros do with them:
declared defaults overlaid with the given ``name:=value`` items, the opaque function called with that
context, and the node's ``parameters`` turned into ``--params-file`` arguments in order (a dict written
as launch_ros writes it, ``{'/**': {'ros__parameters': ...}}`` with ``yaml.dump``). The real nodes are
then created in-process with that command line and asked for their parameter values.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
import types
from pathlib import Path

import pytest
import yaml

from transt_ros.common.launch_arguments import (
    LAUNCH_ONLY_ARGUMENTS,
    USE_SIM_TIME,
    LaunchArgumentError,
    format_value,
    parameter_value,
    unknown_arguments,
)

from .ros_helpers import ros_context

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'transt.launch.py'
CONFIG_FILE = ROOT / 'config' / 'transt.yaml'
DOCS = ROOT / 'docs' / 'ros.md'
NOT_LAUNCH_SETTABLE = {'start_type_description_service'}
"""Declared by rclpy on every node; nothing a user sets at launch."""


class Recorded:
    """A stand-in for a launch class: keeps its constructor's arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class DeclareLaunchArgument(Recorded):
    pass


class OpaqueFunction(Recorded):
    pass


class LaunchDescription(Recorded):
    pass


class Node(Recorded):
    pass


@pytest.fixture(scope='module')
def launch_module():
    """launch/transt.launch.py imported with the stand-ins in place of launch and launch_ros."""
    pytest.importorskip('rclpy')  # the launch file reads the nodes' parameter tables
    stand_ins = {
        'launch': types.ModuleType('launch'),
        'launch.actions': types.SimpleNamespace(DeclareLaunchArgument=DeclareLaunchArgument,
                                                OpaqueFunction=OpaqueFunction),
        'launch.launch_description': types.SimpleNamespace(LaunchDescription=LaunchDescription),
        'launch_ros': types.ModuleType('launch_ros'),
        'launch_ros.actions': types.SimpleNamespace(Node=Node),
    }
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location('transt_launch_file', LAUNCH_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name)
            else:
                sys.modules[name] = previous
    return module


@pytest.fixture(scope='module')
def description(launch_module):
    """The launch description (its default params_file is found through the ament index)."""
    return launch_module.generate_launch_description()


def declared_arguments(description) -> dict[str, DeclareLaunchArgument]:
    (entities,) = description.args
    return {entity.args[0]: entity for entity in entities if isinstance(entity, DeclareLaunchArgument)}


def launch(description, **given: str) -> Node:
    """``ros2 launch transt_ros transt.launch.py name:=value ...``: the one Node it starts."""
    (entities,) = description.args
    (opaque,) = [entity for entity in entities if isinstance(entity, OpaqueFunction)]
    configurations = {name: argument.kwargs['default_value']
                      for name, argument in declared_arguments(description).items()}
    configurations.update(given)
    context = types.SimpleNamespace(launch_configurations=configurations,
                                    argv=[f'{name}:={value}' for name, value in given.items()])
    (node,) = opaque.kwargs['function'](context, *opaque.kwargs.get('args', ()))
    return node


def ros_arguments(node: Node, folder: Path) -> list[str]:
    """The node's ``--ros-args`` as launch_ros builds them (parameters in order, later files win)."""
    arguments = ['--ros-args', *node.kwargs['ros_arguments']]
    for index, parameters in enumerate(node.kwargs['parameters']):
        if isinstance(parameters, dict):
            path = folder / f'launch_params_{index}.yaml'
            path.write_text(yaml.dump({'/**': {'ros__parameters': parameters}}, default_flow_style=False))
            parameters = str(path)
        arguments += ['--params-file', str(parameters)]
    return arguments


def node_parameters(arguments: list[str]) -> dict[str, object]:
    """Both nodes created in-process with ``arguments``: {name: value} of every parameter they declare."""
    from transt_ros.ros.model_handle import ModelHandle
    from transt_ros.ros.model_manager_node import ModelManagerNode
    from transt_ros.ros.tracker_node import TrackerNode

    with ros_context(args=arguments):
        handle = ModelHandle()
        nodes = [ModelManagerNode(handle), TrackerNode(handle)]
        try:
            return {name: node.get_parameter(name).value for node in nodes
                    for name in node.list_parameters([], 0).names}
        finally:
            for node in nodes:
                node.destroy_node()


@pytest.fixture(scope='module')
def declared_parameters() -> set[str]:
    """The names the two nodes declare, read from live nodes."""
    pytest.importorskip('rclpy')
    from transt_ros.ros.model_handle import ModelHandle
    from transt_ros.ros.model_manager_node import ModelManagerNode
    from transt_ros.ros.tracker_node import TrackerNode

    with ros_context():
        handle = ModelHandle()
        nodes = [ModelManagerNode(handle), TrackerNode(handle)]
        names = {name for node in nodes for name in node.list_parameters([], 0).names}
        descriptors = {name: node.describe_parameter(name) for node in nodes
                       for name in node.list_parameters([], 0).names}
        for node in nodes:
            node.destroy_node()
    assert descriptors['image_topic'].read_only and not descriptors['lost_threshold'].read_only
    assert descriptors['lost_threshold'].floating_point_range[0].to_value == 1.0
    return names


def test_every_parameter_is_an_argument_and_every_argument_a_parameter(description, declared_parameters):
    from transt_ros.ros.parameters import all_parameter_names

    assert declared_parameters == all_parameter_names()
    arguments = set(declared_arguments(description))
    settable = declared_parameters - NOT_LAUNCH_SETTABLE
    assert settable - arguments == set(), 'parameters without a launch argument'
    assert arguments - settable == set(LAUNCH_ONLY_ARGUMENTS), 'arguments that are neither a parameter nor launch-only'
    for name, argument in declared_arguments(description).items():
        assert argument.kwargs['description'], f'argument {name} has no description'


def test_parameter_arguments_are_empty_unless_given(description, declared_parameters):
    from transt_ros.ros.parameters import MODEL_MANAGER_PARAMETERS, TRACKER_PARAMETERS

    arguments = declared_arguments(description)
    for spec in (*MODEL_MANAGER_PARAMETERS, *TRACKER_PARAMETERS, USE_SIM_TIME):
        assert arguments[spec.name].kwargs['default_value'] == '', spec.name
        assert f'(node default: {format_value(spec.default)})' in arguments[spec.name].kwargs['description']
    params_file = arguments['params_file'].kwargs['default_value']
    assert Path(params_file).parts[-3:] == ('transt_ros', 'config', 'transt.yaml')
    assert arguments['check_arguments'].kwargs['default_value'] == 'true'
    assert arguments['log_level'].kwargs['default_value'] == 'info'

    node = launch(description)
    assert node.kwargs['parameters'] == [params_file], 'nothing given: params_file alone'
    assert (node.kwargs['package'], node.kwargs['executable']) == ('transt_ros', 'transt_bringup')
    assert 'name' not in node.kwargs, 'a name would rename both nodes of the process'
    assert node.kwargs['namespace'] == '' and node.kwargs['ros_arguments'] == ['--log-level', 'info']
    assert (ROOT / 'scripts' / 'ros' / 'transt_bringup').stat().st_mode & 0o111
    assert launch(description, namespace='robot1', log_level='debug').kwargs['namespace'] == 'robot1'


def test_max_targets_given_at_launch_reaches_the_node(description, tmp_path):
    """``max_targets:=4`` (and others) on top of params_file; the arguments not given keep its values."""
    params = yaml.safe_load(CONFIG_FILE.read_text())
    params['/**']['ros__parameters'].update(lost_frames=9, label='from_yaml')
    params_file = tmp_path / 'mine.yaml'
    params_file.write_text(yaml.safe_dump(params))

    node = launch(description, params_file=str(params_file), max_targets='4', label='true', window_influence='1',
                  cuda_graph='false', use_sim_time='true', image_topic='/camera/image_raw')
    values = node_parameters(ros_arguments(node, tmp_path))
    assert values['max_targets'] == 4
    assert values['label'] == 'true', "a string parameter keeps 'true' as text"
    assert values['window_influence'] == 1.0 and isinstance(values['window_influence'], float)
    assert values['cuda_graph'] is False and values['use_sim_time'] is True
    assert values['image_topic'] == '/camera/image_raw'
    assert values['lost_frames'] == 9, 'not given: the params_file value'
    assert values['lost_threshold'] == 0.3 and values['device'] == 'cpu'

    values = node_parameters(ros_arguments(launch(description, params_file=str(params_file)), tmp_path))
    assert values['max_targets'] == 1 and values['label'] == 'from_yaml' and values['use_sim_time'] is False


def test_an_unknown_or_malformed_argument_is_refused(description):
    with pytest.raises(LaunchArgumentError, match=r'unknown launch argument\(s\) max_target for transt.launch.py; '
                                                  r'its arguments are params_file, .*max_targets'):
        launch(description, max_target='4')
    assert launch(description, max_target='4', check_arguments='false').kwargs['parameters'][1:] == []
    assert unknown_arguments(['launch-prefix:=gdb -ex run', 'a:=1', 'a:=2', 'b'], ['c']) == ['a']
    with pytest.raises(LaunchArgumentError, match=r'launch argument max_targets:=four: expected an integer'):
        launch(description, max_targets='four')
    with pytest.raises(LaunchArgumentError, match='expected true or false'):
        launch(description, autostart='yes please')


def test_parameter_values_take_the_type_of_the_default():
    assert parameter_value('n', '12', 1) == 12
    assert parameter_value('x', '2', 0.5) == 2.0 and isinstance(parameter_value('x', '2', 0.5), float)
    assert parameter_value('x', '1e-3', 0.5) == 0.001
    assert parameter_value('b', 'True', False) is True and parameter_value('b', 'false', True) is False
    assert parameter_value('s', '12', 'text') == '12'
    for name, text, default in (('n', '1.5', 1), ('n', 'true', 1), ('x', 'fast', 0.5), ('b', '1', True)):
        with pytest.raises(LaunchArgumentError):
            parameter_value(name, text, default)


def test_the_launch_file_holds_no_rules_of_its_own():
    """The rules live in transt_ros/common/launch_arguments.py (tested above); the file only wires them."""
    tree = ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))
    forbidden = (ast.If, ast.IfExp, ast.For, ast.While, ast.Try, ast.Lambda, ast.DictComp)
    assert not [type(n).__name__ for n in ast.walk(tree) if isinstance(n, forbidden)]
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert calls.count('Node') == 1 and 'PythonExpression' not in calls


def test_config_lists_every_parameter_with_its_default(declared_parameters):
    from transt_ros.ros.parameters import MODEL_MANAGER_PARAMETERS, TRACKER_PARAMETERS

    defaults = {spec.name: spec.default for spec in MODEL_MANAGER_PARAMETERS + TRACKER_PARAMETERS}
    config = yaml.safe_load(CONFIG_FILE.read_text())
    assert list(config) == ['/**'] and list(config['/**']) == ['ros__parameters']
    assert config['/**']['ros__parameters'] == defaults, 'config/transt.yaml: every parameter with its default'
    assert set(defaults) <= declared_parameters


def documented_parameters() -> dict[str, tuple[str, str]]:
    """{name: (node, default)} from the table of docs/ros.md's "Parameters" section."""
    section = DOCS.read_text().split('\n## Parameters\n', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if len(cells) == 5 and cells[0] in ('manager', 'tracker'):
            name = re.fullmatch(r'`([a-z_0-9]+)`', cells[1]).group(1)
            default = re.match(r"`([^`]*)`", cells[2])
            assert default, f'{name}: the default column should start with the value in backticks: {cells[2]}'
            rows[name] = (cells[0], default.group(1))
    return rows


def test_docs_give_every_parameter_with_its_declared_default():
    from transt_ros.ros.parameters import MODEL_MANAGER_PARAMETERS, TRACKER_PARAMETERS

    documented = documented_parameters()
    expected = {spec.name: ('manager', format_value(spec.default)) for spec in MODEL_MANAGER_PARAMETERS}
    expected.update({spec.name: ('tracker', format_value(spec.default)) for spec in TRACKER_PARAMETERS})
    assert documented == expected

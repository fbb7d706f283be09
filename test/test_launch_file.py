"""launch/transt.launch.py and config/transt.yaml against the parameters the nodes really declare.

launch / launch_ros are not installable here (no wheels), so the launch file is read with ``ast``:
its arguments, the parameter names it sets, and that it holds no logic beyond substitutions.
The declared names come from the nodes themselves (created in-process, no model needed) and
must equal the tables of transt_ros.ros.parameters.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from .ros_helpers import ros_context

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILE = ROOT / 'launch' / 'transt.launch.py'
CONFIG_FILE = ROOT / 'config' / 'transt.yaml'
REQUIRED_ARGUMENTS = {'params_file', 'image_topic', 'checkpoint', 'device', 'autostart', 'namespace',
                      'log_level', 'use_sim_time'}


def call_name(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, 'attr', '')


def calls(tree, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and call_name(node) == name]


def keyword(node: ast.Call, name: str):
    return next((k.value for k in node.keywords if k.arg == name), None)


@pytest.fixture(scope='module')
def launch_tree():
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


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
    assert 'best_effort' in descriptors['image_qos_reliability'].additional_constraints
    return names


def launch_arguments(tree) -> dict[str, str]:
    arguments = {}
    for node in calls(tree, 'DeclareLaunchArgument'):
        name = node.args[0].value
        default = keyword(node, 'default_value')
        arguments[name] = default.value if isinstance(default, ast.Constant) else None
        assert keyword(node, 'description') is not None, f'argument {name} has no description'
    return arguments


def test_declares_the_required_arguments(launch_tree):
    arguments = launch_arguments(launch_tree)
    assert REQUIRED_ARGUMENTS <= set(arguments), REQUIRED_ARGUMENTS - set(arguments)
    assert arguments['autostart'] in ('true', 'false') and arguments['use_sim_time'] == 'false'
    # every LaunchConfiguration refers to a declared argument
    used = {node.args[0].value for node in calls(launch_tree, 'LaunchConfiguration')}
    assert used <= set(arguments), used - set(arguments)
    assert REQUIRED_ARGUMENTS <= used, 'declared but unused: ' + str(REQUIRED_ARGUMENTS - used)


def test_defaults_match_the_nodes():
    from transt_ros.ros.parameters import MODEL_MANAGER_PARAMETERS, TRACKER_PARAMETERS

    defaults = {spec.name: spec.default for spec in MODEL_MANAGER_PARAMETERS + TRACKER_PARAMETERS}
    arguments = launch_arguments(ast.parse(LAUNCH_FILE.read_text()))
    for name in ('image_topic', 'checkpoint', 'device'):
        assert arguments[name] == defaults[name], name
    config = yaml.safe_load(CONFIG_FILE.read_text())['/**']['ros__parameters']
    assert config == defaults, 'config/transt.yaml should list every parameter with its default'


def test_params_file_defaults_to_the_installed_config(launch_tree):
    (node,) = calls(launch_tree, 'DeclareLaunchArgument')[:1]
    assert node.args[0].value == 'params_file'
    lookups = calls(launch_tree, 'get_package_share_directory')
    assert [call.args[0].value for call in lookups] == ['transt_ros']
    joined = calls(launch_tree, 'join')
    assert any([a.value for a in call.args[1:] if isinstance(a, ast.Constant)] == ['config', 'transt.yaml']
               for call in joined)


def test_one_bringup_node_and_no_logic(launch_tree):
    (node,) = calls(launch_tree, 'Node')
    assert keyword(node, 'package').value == 'transt_ros'
    assert keyword(node, 'executable').value == 'transt_bringup'
    assert keyword(node, 'name') is None, 'a name would rename both nodes of the process'
    assert (ROOT / 'scripts' / 'ros' / 'transt_bringup').stat().st_mode & 0o111
    ros_arguments = keyword(node, 'ros_arguments')
    assert ast.unparse(ros_arguments) == "['--log-level', LaunchConfiguration('log_level')]"
    forbidden = (ast.If, ast.IfExp, ast.For, ast.While, ast.Try, ast.Lambda, ast.ListComp, ast.DictComp)
    assert not [type(n).__name__ for n in ast.walk(launch_tree) if isinstance(n, forbidden)]
    assert not calls(launch_tree, 'OpaqueFunction') and not calls(launch_tree, 'PythonExpression')


def test_parameter_names_are_declared_by_the_nodes(launch_tree, declared_parameters):
    from transt_ros.ros.parameters import all_parameter_names

    assert declared_parameters == all_parameter_names()
    (node,) = calls(launch_tree, 'Node')
    parameters = keyword(node, 'parameters')
    dicts = [item for item in parameters.elts if isinstance(item, ast.Dict)]
    assert len(dicts) == 1
    names = {key.value for key in dicts[0].keys}
    assert names <= declared_parameters, names - declared_parameters
    assert names == {'image_topic', 'checkpoint', 'device', 'autostart', 'use_sim_time'}

    config = yaml.safe_load(CONFIG_FILE.read_text())
    assert list(config) == ['/**'] and list(config['/**']) == ['ros__parameters']
    keys = set(config['/**']['ros__parameters'])
    assert keys <= declared_parameters, keys - declared_parameters


def test_docs_describe_every_parameter():
    from transt_ros.ros.parameters import MODEL_MANAGER_PARAMETERS, TRACKER_PARAMETERS

    docs = (ROOT / 'docs' / 'ros.md').read_text()
    missing = [spec.name for spec in MODEL_MANAGER_PARAMETERS + TRACKER_PARAMETERS if f'`{spec.name}`' not in docs]
    assert not missing, missing

"""The offline bundle (scripts/bundle.sh, requirements/bundle.txt, scripts/bundle_install.sh; docs/deploy.md).

Fast: the bundle's package list is the lock's (exact versions), every lock entry is decided, PyTorch and the
development tools stay out. Slow: a bundle for this Python, its size, and install.sh into a fresh venv that
sees only torch, numpy and OpenCV of this environment (symlinked, not a 5 GB install), with no package index.
"""
from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_SH = ROOT / 'scripts' / 'bundle.sh'
LOCK = ROOT / 'requirements' / 'lock.txt'
SPEC = ROOT / 'requirements' / 'bundle.txt'
PYTHON = f'{sys.version_info.major}.{sys.version_info.minor}'
BUDGET_MIB = 60
TORCH_ONLY = re.compile(r'^(torch|torchvision|triton|nvidia-.*|cuda-.*|sympy|mpmath|networkx|jinja2|markupsafe|'
                        r'fsspec|filelock)$')
DEV_TOOLS = re.compile(r'^(pytest.*|hypothesis|coverage|ruff|colcon-.*|ros-ament-cmake.*|ros-kilted-ament-.*|'
                       r'ros-rosidl-(adapter|cli|cmake|pycommon|generator-(c|cpp|type-description))|'
                       r'.*-generators|empy|catkin-pkg|lark-parser|rosbags|got10k|tensorboard)$')


def norm(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def lock_pins(path: Path = LOCK) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            name, version = line.split('==')
            pins[norm(name)] = version
    return pins


def spec_rows(path: Path = SPEC) -> list[list[str]]:
    return [fields for fields in (line.split('#', 1)[0].split() for line in path.read_text().splitlines()) if fields]


def groups() -> list[str]:
    return sorted({group for role, *_ in spec_rows() if role.startswith('with:') for group in role[5:].split(',')})


def bundle_list(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(['bash', str(BUNDLE_SH), '--python', PYTHON, '--list', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, env=env)


def listed(*args: str) -> list[tuple[str, str, str, str]]:
    completed = bundle_list(*args)
    assert completed.returncode == 0, completed.stderr
    assert 'note:' not in completed.stderr, completed.stderr  # no stale exclude, no redundant version
    return [tuple(line.split()) for line in completed.stdout.splitlines()]


# ------------------------------------------------------------------------------------------ the list

def test_every_lock_entry_is_decided_once():
    names = [norm(row[1]) for row in spec_rows()]
    assert len(names) == len(set(names)), 'a package is listed twice in requirements/bundle.txt'
    assert set(lock_pins()) <= set(names), f'undecided: {sorted(set(lock_pins()) - set(names))}'


def test_bundled_versions_are_the_locks():
    pins = lock_pins()
    explicit = {norm(row[1]): row[2] for row in spec_rows() if len(row) == 3}
    everything = listed(*[arg for group in groups() for arg in ('--with', group)])
    assert everything
    for role, name, version, _group in everything:
        assert role in ('ros', 'lib')
        if norm(name) in pins:
            assert version == pins[norm(name)], f'{name} {version}: the lock pins {pins[norm(name)]}'
        else:  # only a package named by a version in requirements/bundle.txt: @NAME = the lock's version of NAME
            reference = explicit[norm(name)]
            assert reference.startswith('@') and version == pins[norm(reference[1:])], (name, reference)
    names = {norm(name) for _, name, _, _ in everything}
    assert not {name for name in names if TORCH_ONLY.match(name)}, 'torch and what only it pulls in stay out'
    assert not {name for name in names if DEV_TOOLS.match(name)}, 'build, test and development tools stay out'


def test_default_bundle_is_the_runtime_only():
    default = listed()
    names = {norm(name) for _, name, _, _ in default}
    assert all(group == '-' for *_, group in default)
    assert {'ros-kilted-rclpy', 'ros-rclpy', 'ros-fastdds', 'ros-rmw-fastrtps-cpp', 'ros-sensor-msgs',
            'ros-lifecycle-msgs', 'ros-diagnostic-msgs', 'ros-wheels-bootstrapper', 'ros-rosidl-generator-py',
            'pyyaml', 'tqdm', 'mcap', 'zstandard'} <= names
    assert not names & {'numpy', 'opencv-python-headless', 'opencv-contrib-python-headless', 'onnxruntime',
                        'openvino', 'matplotlib', 'scipy'}, 'the optional groups are not in the default bundle'
    assert all(role == 'ros' for role, name, *_ in default if name.startswith('ros-'))


def test_optional_groups():
    for group, expected in {'numpy': {'numpy'}, 'opencv': {'opencv-python-headless'},
                            'onnxruntime': {'onnxruntime', 'flatbuffers', 'protobuf', 'packaging', 'onnx', 'ml-dtypes'},
                            'openvino': {'openvino', 'openvino-telemetry', 'protobuf', 'onnx', 'ml-dtypes'}}.items():
        added = {norm(name) for _role, name, _version, member in listed('--with', group) if member == group}
        assert added == expected, (group, added)
    contrib = lock_pins()['opencv-contrib-python-headless']
    assert ('lib', 'opencv-python-headless', contrib, 'opencv') in listed('--with', 'opencv')
    unknown = bundle_list('--with', 'no-such-group')
    assert unknown.returncode != 0 and 'unknown --with group' in unknown.stderr


def test_the_list_refuses_an_undecided_or_mismatched_lock_entry(tmp_path):
    lock = tmp_path / 'lock.txt'
    lock.write_text(LOCK.read_text() + 'brand-new-package==1.0\n')
    completed = bundle_list(env={**os.environ, 'BUNDLE_LOCK': str(lock)})
    assert completed.returncode != 0 and 'brand-new-package==1.0' in completed.stderr
    spec = tmp_path / 'bundle.txt'
    spec.write_text(SPEC.read_text().replace('lib  tqdm ', 'lib  tqdm ==0.0.1 '))
    completed = bundle_list(env={**os.environ, 'BUNDLE_SPEC': str(spec)})
    assert completed.returncode != 0 and 'differs from' in completed.stderr


# ------------------------------------------------------------------------------ build + offline install

def _torch_view(site: Path) -> list[str]:
    """Symlink this environment's torch (with what it requires), numpy and OpenCV into ``site``; -> their names.

    A venv whose .pth names ``site`` then has torch, numpy and cv2 as a GPU machine would, and nothing else
    of this environment (not rclpy, not transt_ros, not PyYAML): what install.sh installs must land in it."""
    from packaging.requirements import Requirement

    wanted, seen = ['torch', 'numpy', 'opencv-contrib-python-headless'], set()
    while wanted:
        name = norm(wanted.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({'extra': ''}):
                wanted.append(requirement.name)
        for file in dist.files or []:
            top = file.parts[0]
            if top != '..' and not (site / top).exists():
                (site / top).symlink_to(Path(dist.locate_file(top)))
    return sorted(seen)


@pytest.mark.slow
@pytest.mark.ros
def test_bundle_builds_and_installs_offline(tmp_path):
    pytest.importorskip('torch')
    bundle = tmp_path / 'bundle'
    built = subprocess.run(['bash', str(BUNDLE_SH), '--python', PYTHON, str(bundle)], cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    size = sum(path.stat().st_size for path in bundle.rglob('*') if path.is_file())
    assert size <= BUDGET_MIB * 2**20, f'{size / 2**20:.1f} MiB > {BUDGET_MIB} MiB'
    wheels = {path.name for path in (bundle / 'wheels').glob('*.whl')}
    assert any(name.startswith('transt_ros-') for name in wheels)
    assert any(name.startswith('transt_ros_interfaces-') and f'-cp{PYTHON.replace(".", "")}-' in name
               for name in wheels)
    assert not any(name.startswith(('torch-', 'numpy-', 'nvidia')) for name in wheels)

    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=120,
                   env={k: v for k, v in os.environ.items() if k != 'VIRTUAL_ENV'})
    python = venv / 'bin' / 'python'
    site_dir = subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                              capture_output=True, text=True, check=True).stdout.strip()
    view = tmp_path / 'torch-view'
    view.mkdir()
    shared = _torch_view(view)
    assert 'torch' in shared and 'ros-rclpy' not in shared and 'transt-ros' not in shared
    (Path(site_dir) / '_torch_view.pth').write_text(f'{view}\n')

    env = {key: value for key, value in os.environ.items()
           if not key.startswith(('PIP_', 'AMENT_', 'COLCON_', 'ROS_', 'RMW_')) and key not in
           ('PYTHONPATH', 'LD_LIBRARY_PATH', 'VIRTUAL_ENV', '_ROS_WHEELS_BOOTSTRAP_COMPLETE')}
    env.update(PIP_NO_INDEX='1', PIP_INDEX_URL='http://127.0.0.1:9/simple',
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', ROS_DOMAIN_ID=os.environ.get('ROS_DOMAIN_ID', '171'))
    installed = subprocess.run(['bash', str(bundle / 'install.sh'), str(venv)], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=600)
    output = installed.stdout + installed.stderr
    assert installed.returncode == 0, output
    assert 'check passed' in output and (venv / 'bin' / 'transt-env.sh').is_file()

    probe = subprocess.run([str(python), '-I', '-c', '''
import json, sys
import cv2, mcap, numpy, rclpy, torch, tqdm, transt_ros, transt_ros.msg, vision_msgs.msg, yaml
import transt_ros.ros.bringup
print(json.dumps({name: getattr(sys.modules[name], '__file__', None) for name in
                  ('cv2', 'mcap', 'numpy', 'rclpy', 'torch', 'tqdm', 'transt_ros.msg', 'transt_ros.ros.bringup',
                   'vision_msgs.msg', 'yaml')}))
'''], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr
    files = {name: str(Path(path).resolve()) for name, path in json.loads(probe.stdout.splitlines()[-1]).items()}
    for name in ('mcap', 'rclpy', 'tqdm', 'transt_ros.msg', 'transt_ros.ros.bringup', 'vision_msgs.msg', 'yaml'):
        assert files[name].startswith(str(venv.resolve())), f'{name} not installed into the new venv: {files[name]}'
    for name in ('cv2', 'numpy', 'torch'):  # kept: the venv's own (here: this environment's, through the view)
        assert not files[name].startswith(str(venv.resolve())), f'{name} was installed although present'

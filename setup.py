"""pip install for the standalone mode (colcon uses CMakeLists.txt through package.xml)."""
from setuptools import find_packages, setup

setup(
    name='transt_ros',
    version='0.1.0',
    description='TransT visual object tracker for ROS 2, with a ROS-free core',
    license='Apache-2.0',
    packages=find_packages(include=['transt_ros', 'transt_ros.*']),
    package_data={'transt_ros': ['data/*']},
    python_requires='>=3.10',
    entry_points={
        'console_scripts': [
            'transt-convert = transt_ros.checkpoint.convert:main',
            'transt-track = transt_ros.tracking.video:main',
            'transt-ros = transt_ros.ros.bringup:main',
            'transt-train = transt_ros.training.cli:main',
            'transt-eval = transt_ros.evaluation.cli:main',
            'transt-demo = transt_ros.demo:main',
            'transt-make-bag = transt_ros.evaluation.make_bag:main',
            'transt-trax = transt_ros.evaluation.trax_server:main',
            'transt-export = transt_ros.deploy.export_cli:main',
        ],
    },
)

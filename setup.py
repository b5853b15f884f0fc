"""edgerestore: real-time video restoration on small boards.

The package installs on Python 3.6 (Jetson Nano, JetPack 4.6) for the runtime and on 3.8+ for
training and export. Extras:

  cpu     laptop/desktop runtime: ONNX Runtime, OpenCV, PyAV (`edgerestore demo` needs this)
  host    training and export: cpu + torch, ONNX tools, scikit-image, matplotlib (reports)
  report  only what `edgerestore report` adds to a runtime install: matplotlib
  tflite  TFLite conversion (litert-torch) and the LiteRT interpreter
  pi      Raspberry Pi runtime (LiteRT interpreter + ONNX Runtime; picamera2 comes from apt)
  jetson  Jetson runtime (pycuda; TensorRT and OpenCV come with JetPack)
  dev     tests and linters
"""

from setuptools import find_packages, setup

# The service's /metrics endpoint (Prometheus text format); pip picks 0.17.x on Python 3.6.
METRICS = ["prometheus-client>=0.12"]

CPU = [
    "onnxruntime>=1.10",
    "opencv-python-headless>=4.5",
    "av>=8.0",
] + METRICS

HOST = CPU + [
    # CI installs torch==2.13.0 (CPU build) first; the range must include it.
    "torch>=2.1,<2.15",
    "onnx>=1.14",
    "onnxslim>=0.1.30",
    "scikit-image>=0.21",
    "pyyaml>=6.0",
    "matplotlib>=3.3",
    "tensorboard>=2.10",  # distill logs (optional at run time: log.csv is always written)
]

REPORT = ["matplotlib>=3.3"]

TFLITE = [
    "litert-torch>=0.5; python_version>='3.10'",
    "ai-edge-litert>=1.2; python_version>='3.10'",
    # export/tflite.py imports these itself (INT8 calibration and FP16 casting); litert-torch
    # pulls them in today, but a dependency we import is one we declare.
    "ai-edge-quantizer>=0.4; python_version>='3.10'",
    "torchao>=0.10; python_version>='3.10'",
]

setup(
    name="edgerestore",
    version="0.1.0",
    description="Sharpen and denoise live video on Raspberry Pi, Jetson and laptops with distilled tiny networks",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["edgerestore", "edgerestore.*"]),
    include_package_data=True,
    package_data={
        "edgerestore": [
            "weights/*.onnx", "weights/*.filter.npz", "weights/*.pt", "weights/*.md", "weights/*.json",
            "calibration_data/*", "data/*", "data/**/*", "devices/*.md", "devices/*.sh",
        ],
    },
    python_requires=">=3.6",
    install_requires=[
        "numpy>=1.19",
        "click>=7.1",
        "tqdm>=4.50",
        "dataclasses>=0.8; python_version<'3.7'",  # the evaluation set's degradations, on JetPack 4.6
    ],
    extras_require={
        "cpu": CPU,
        "host": HOST,
        "tflite": TFLITE,
        "report": REPORT,
        "pi": ["ai-edge-litert>=1.2; python_version>='3.9'", "onnxruntime>=1.10", "av>=8.0"] + METRICS,
        "jetson": ["pycuda>=2021.1"] + METRICS,
        "dev": [
            "pytest>=7.0",
            "pytest-timeout>=2.1",
            "ruff>=0.4",
            "vermin>=1.6",
            "pytorch-msssim>=1.0",
            "jsonschema>=3.2",
        ],
    },
    entry_points={"console_scripts": ["edgerestore=edgerestore.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX :: Linux",
        "Topic :: Multimedia :: Video",
    ],
)

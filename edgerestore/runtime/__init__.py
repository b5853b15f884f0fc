"""The on-device runtime: source -> backend -> sinks.

Never imports torch, and stays Python 3.6-compatible (Jetson Nano: JetPack 4.6 = Python 3.6,
TensorRT 8.2); CI checks both (vermin -t=3.6, and a test that runs the runtime without torch).
"""

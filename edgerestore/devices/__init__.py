"""Boards: what we run on (detect.py) and how to set each one up. Python 3.6-safe, torch-free."""

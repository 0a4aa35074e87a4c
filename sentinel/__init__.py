"""Process Sentinel: real-time monitoring of long-running processes."""

__version__ = "0.1.0"

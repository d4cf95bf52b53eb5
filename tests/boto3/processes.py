"""What the Python tests do with the binaries they start."""

import subprocess


def stop(process, grace_s):
    """SIGTERM, then SIGKILL if `process` has not ended within `grace_s` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)

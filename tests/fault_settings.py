"""Settings of the worker the fault test starts: the project's, with a visibility timeout of seconds (so a
message of a killed worker comes back within the test) and the fault task loaded."""

from config.settings import *  # noqa: F403

CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
CELERY_IMPORTS = ["tests.fault_tasks"]

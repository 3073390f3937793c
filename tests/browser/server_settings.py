"""Settings of the portal the browser test runs in a subprocess: the project's, pointed at the test run's
database, cache key prefix and channel-layer prefix (``tests/conftest.py`` gives each run its own), so the
subprocess sees the rows the test committed and shares Redis keys and groups with the test process."""

import os

from config.settings import *  # noqa: F403
from config.settings import CACHES, CHANNEL_LAYERS, DATABASES, PASSWORD_HASHERS

DATABASES["default"]["NAME"] = os.environ["BROWSER_TEST_DB_NAME"]
CACHES["default"]["KEY_PREFIX"] = os.environ["BROWSER_TEST_CACHE_PREFIX"]
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = os.environ["BROWSER_TEST_CHANNEL_PREFIX"]
# The test process hashes passwords with MD5 (tests/conftest.py): the server must check them the same way.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
ORDER_AUTO_ASSIGN = False

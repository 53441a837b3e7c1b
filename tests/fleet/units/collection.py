"""Where the collection upgrade_guard.debian lives, and its plugins loaded from there by path.

The tests run with Debian's /usr/bin/python3, whose dist-packages hold ansible-core:
  /usr/bin/python3 -m unittest discover -s tests/fleet/units      (from the repository's root)
"""

import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COLLECTIONS_PATH = os.path.join(REPO, 'packaging', 'ansible')
COLLECTION = os.path.join(COLLECTIONS_PATH, 'ansible_collections', 'upgrade_guard', 'debian')


def load_plugin(kind, name):
    """The Python module of plugins/KIND/NAME.py, e.g. load_plugin('modules', 'upgrade_guard')."""
    path = os.path.join(COLLECTION, 'plugins', kind, name + '.py')
    spec = importlib.util.spec_from_file_location('upgrade_guard_debian_%s_%s' % (kind, name), path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module

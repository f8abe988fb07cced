# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing a file so that readers see the old content or the new, never a part."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError


def write_atomically(path, data, mode=0o644, option="dest"):
    """Write bytes or text to `path` via a temporary file in the same directory,
    fsync and rename. Returns True when the content changed. `option` names the
    user's option in error messages."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise PgopsError("Option %s: directory %s does not exist." % (option, directory))
    try:
        with open(path, "rb") as handle:
            same = handle.read() == data
        if same:
            if os.stat(path).st_mode & 0o7777 != mode:
                os.chmod(path, mode)
                return True
            return False
    except (IOError, OSError):
        pass
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except (IOError, OSError) as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise PgopsError("Option %s: cannot write %s: %s." % (option, path, exc.strerror or exc))
    return True

# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type every pgops engine raises; modules turn it into fail_json."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PgopsError(Exception):
    """A failure explained in one sentence, safe to show (no secrets, no traceback).

    `details` carries structured facts (never secrets) that modules may return.
    """

    def __init__(self, message, details=None):
        super(PgopsError, self).__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self):
        return self.message


def redact(text, secrets):
    """`text` with every non-empty secret replaced by ********."""
    text = "" if text is None else str(text)
    for secret in secrets or ():
        if secret:
            text = text.replace(secret, "********")
    return text

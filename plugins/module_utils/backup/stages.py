# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pipeline stages a backup stream passes through: compression and GPG encryption,
and their inverses for verification and restore. Each stage is an argv run by the
client-tool pipeline, so every exit status is checked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil
import subprocess
import tempfile

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError

# method -> (program, file suffix, default level, valid levels)
COMPRESSORS = {
    "gzip": ("gzip", ".gz", 6, range(1, 10)),
    "zstd": ("zstd", ".zst", 3, range(1, 20)),
    "lz4": ("lz4", ".lz4", 1, range(1, 13)),
}


def compression_level(method, level):
    """The level to use, checked against the method's range (PgopsError naming the option)."""
    if method == "none":
        return None
    program, suffix, default, valid = COMPRESSORS[method]
    if level is None:
        return default
    if level not in valid:
        raise PgopsError("Option compression_level must be between %d and %d for %s, got %s."
                         % (valid[0], valid[-1], method, level))
    return level


def require_program(program, option):
    path = shutil.which(program)
    if not path:
        raise PgopsError("Option %s needs the %s program on the host running the module, and it is not installed."
                         % (option, program))
    return path


def compress_stage(method, level):
    program = require_program(COMPRESSORS[method][0], "compression")
    if method == "gzip":
        return [program, "-c", "-%d" % level]
    return [program, "-q", "-c", "-%d" % level]


def decompress_stage(method):
    program = require_program(COMPRESSORS[method][0], "compression")
    if method == "gzip":
        return [program, "-dc"]
    return [program, "-q", "-dc"]


class Encryption:
    """GPG in the stream, to a recipient's public key or with a passphrase.

    A context manager: a private GNUPGHOME (0700, removed on exit) holds the
    imported key and the passphrase file, so neither touches the host's keyring
    and the passphrase is never on a command line.
    """

    def __init__(self, public_key=None, passphrase=None, private_key=None):
        self.public_key = public_key
        self.passphrase = passphrase
        self.private_key = private_key
        self.home = None
        self.fingerprint = None
        self.gpg = None

    @property
    def method(self):
        return "gpg-public-key" if self.public_key else "gpg-passphrase"

    def __enter__(self):
        self.gpg = require_program("gpg", "encryption")
        self.home = tempfile.mkdtemp(prefix="pgops-gpg-")
        os.chmod(self.home, 0o700)
        try:
            if self.public_key:
                self.fingerprint = self._import(self.public_key, "encryption.public_key")
            if self.private_key:
                self._import(self.private_key, "encryption.private_key")
            if self.passphrase is not None:
                if "\n" in self.passphrase or "\r" in self.passphrase:
                    raise PgopsError("Option encryption.passphrase must be a single line.")
                fd = os.open(os.path.join(self.home, "passphrase"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(self.passphrase)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info):
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
        return False

    def _base(self):
        return [self.gpg, "--batch", "--quiet", "--no-tty", "--homedir", self.home]

    def _import(self, key_path, option):
        if not os.path.isfile(key_path):
            raise PgopsError("Option %s: key file %s does not exist." % (option, key_path))
        out = subprocess.run(self._base() + ["--with-colons", "--import-options", "import-show", "--import", key_path],
                             capture_output=True, text=True, check=False)
        fingerprints = re.findall(r"^fpr:+([0-9A-F]{40,64}):", out.stdout, re.MULTILINE)
        if out.returncode != 0 or not fingerprints:
            raise PgopsError("Option %s: %s holds no usable GPG key." % (option, key_path))
        return fingerprints[0]

    def encrypt_stage(self):
        if self.public_key:
            return self._base() + ["--trust-model", "always", "--compress-algo", "none",
                                   "--recipient", self.fingerprint, "--encrypt"]
        return self._base() + ["--pinentry-mode", "loopback", "--passphrase-file", os.path.join(self.home, "passphrase"),
                               "--compress-algo", "none", "--cipher-algo", "AES256", "--symmetric"]

    def can_decrypt(self):
        return self.passphrase is not None or self.private_key is not None

    def decrypt_stage(self):
        args = self._base()
        if self.passphrase is not None:
            args += ["--pinentry-mode", "loopback", "--passphrase-file", os.path.join(self.home, "passphrase")]
        return args + ["--decrypt"]

    def describe(self):
        """What the manifest records: the method and the recipient, never a secret."""
        if self.public_key:
            return dict(method=self.method, recipient_fingerprint=self.fingerprint)
        return dict(method=self.method, cipher="AES256")

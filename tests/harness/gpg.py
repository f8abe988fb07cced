"""A throw-away GPG key pair for the encryption tests."""

import os
import subprocess


def make_gpg_key(home):
    """(public key file, private key file) of a new key pair made in `home`."""
    os.makedirs(home, mode=0o700)
    subprocess.run(["gpg", "--batch", "--homedir", home, "--passphrase", "", "--quick-gen-key",
                    "dba-team@example.invalid", "rsa2048", "encrypt", "never"], check=True, capture_output=True)
    public, private = os.path.join(home, "pub.asc"), os.path.join(home, "sec.asc")
    with open(public, "wb") as handle:
        handle.write(subprocess.run(["gpg", "--batch", "--homedir", home, "--armor", "--export"], check=True,
                                    capture_output=True).stdout)
    with open(private, "wb") as handle:
        handle.write(subprocess.run(["gpg", "--batch", "--homedir", home, "--armor", "--pinentry-mode", "loopback",
                                     "--passphrase", "", "--export-secret-keys"], check=True, capture_output=True).stdout)
    return public, private

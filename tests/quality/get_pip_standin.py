"""pgops.runbook offline get-pip stand-in (written by tests/quality/sanity.sh).

ansible-test bootstraps pip in each virtualenv it creates by running a get-pip
script that it downloads from Ansible's CI file host and caches as
~/.ansible/test/cache/get_pip_<version>.py. That host is unreachable from our
machines, so this file is placed in the cache instead: it installs the pip that
ships with the interpreter (ensurepip), then lets that pip install the requested
packages (for example pip==24.2) from the configured package index.
"""

import subprocess
import sys

# Options that only get-pip understands; pip install would reject them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel", "--no-pip"}


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    bootstrap = subprocess.run(
        [sys.executable, "-m", "ensurepip", "--default-pip"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    if bootstrap.returncode != 0:
        sys.stderr.write(bootstrap.stdout)
        sys.exit(bootstrap.returncode)
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--quiet"] + args))


if __name__ == "__main__":
    main()

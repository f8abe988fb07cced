"""S3 on loopback for tests and benchmarks: a moto server (network faults: network.LoopbackProxy).

    server = MotoServer(); server.start()   # moto_server -H 127.0.0.1 -p <free port>
    server.client().create_bucket(Bucket="backups")
    server.stop()

Command line (for benchmarks and poking around by hand):
    python tests/harness/s3.py            -> prints JSON facts, serves until Ctrl-C
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

try:
    from tests.harness.network import free_port
except ImportError:  # imported from tests/harness directly (benchmarks) or run as a script
    from network import free_port

REGION = "us-east-1"
# moto accepts any credentials; these are dummies, not secrets.
ACCESS_KEY = "pgops-test-access-key"
SECRET_KEY = "pgops-test-secret-key"


def moto_server_executable():
    """moto_server from the virtualenv the tests run in (next to sys.executable)."""
    path = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.access(path, os.X_OK):
        raise RuntimeError("%s not found: pip install 'moto[server]' into this virtualenv" % path)
    return path


class MotoServer:
    """A moto S3 server on 127.0.0.1, plain HTTP, objects kept in its memory."""

    def __init__(self, port=None, free_actions=None):
        """`free_actions`: when set, moto checks credentials (IAM) after that many unauthenticated
        requests, so a test can first create users and keys, then meet real auth failures."""
        self.port = port or free_port()
        self.free_actions = free_actions
        self.process = None
        self.log = None

    @property
    def endpoint_url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=30):
        self.log = tempfile.NamedTemporaryFile(prefix="pgops-moto-", suffix=".log", delete=False)
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
        if self.free_actions is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.free_actions)
        self.process = subprocess.Popen([moto_server_executable(), "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.output()
                self.stop()
                raise RuntimeError("moto_server exited with %s:\n%s" % (self.process.returncode, output))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    if sock.recv(16).startswith(b"HTTP/"):
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not answer on port %d within %d s" % (self.port, timeout))

    def output(self):
        with open(self.log.name, "rb") as handle:
            return handle.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
            os.unlink(self.log.name)
            self.log = None

    def facts(self):
        """What a test needs to talk to the server."""
        return dict(endpoint_url=self.endpoint_url, port=self.port, region=REGION, access_key=ACCESS_KEY,
                    secret_key=SECRET_KEY)

    def client(self, service="s3"):
        """A boto3 client for set-up and for checking from the outside."""
        return client_for(self.facts(), service)


def client_for(facts, service="s3"):
    """A boto3 client for the server described by `facts` (what MotoServer.facts() returns)."""
    import boto3
    return boto3.client(service, endpoint_url=facts["endpoint_url"], region_name=facts["region"],
                        aws_access_key_id=facts["access_key"], aws_secret_access_key=facts["secret_key"])


def s3_option(facts, bucket, **extra):
    """The modules' s3 option for `bucket` on the server described by `facts` (prefix prod)."""
    option = dict(bucket=bucket, prefix="prod", endpoint_url=facts["endpoint_url"], region=facts["region"],
                  access_key=facts["access_key"], secret_key=facts["secret_key"])
    option.update(extra)
    return option


if __name__ == "__main__":
    moto = MotoServer().start()
    print(json.dumps(moto.facts()), flush=True)
    try:
        moto.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        moto.stop()

"""S3 on loopback for tests and benchmarks: a moto server, and a proxy that breaks the network.

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
import threading
import time

REGION = "us-east-1"
# moto accepts any credentials; these are dummies, not secrets.
ACCESS_KEY = "pgops-test-access-key"
SECRET_KEY = "pgops-test-secret-key"


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class CuttingProxy:
    """A loopback TCP proxy that forwards normally until `budget` bytes have gone upstream
    in total, then cuts every connection (open ones and new ones): the network dies mid-upload."""

    def __init__(self, target_port, budget):
        self.target_port = target_port
        self.budget = budget
        self.forwarded = 0
        self.lock = threading.Lock()
        self.sockets = []
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.stopped = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def endpoint_url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def cut(self):
        return self.forwarded >= self.budget

    def accept(self):
        while not self.stopped.is_set():
            try:
                client, dummy = self.server.accept()
            except OSError:
                return
            if self.cut:
                self.close_socket(client)
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets.extend([client, upstream])
            threading.Thread(target=self.pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, False), daemon=True).start()

    def pump(self, src, dst, counted):
        try:
            for chunk in iter(lambda: src.recv(65536), b""):
                if counted:
                    with self.lock:
                        room = self.budget - self.forwarded
                        self.forwarded += len(chunk)
                    if room < len(chunk):
                        if room > 0:
                            dst.sendall(chunk[:room])
                        self.cut_all()
                        return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            self.close_socket(src)
            self.close_socket(dst)

    @staticmethod
    def close_socket(sock):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def cut_all(self):
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            self.close_socket(sock)

    def close(self):
        self.stopped.set()
        self.server.close()
        self.cut_all()


if __name__ == "__main__":
    moto = MotoServer().start()
    print(json.dumps(moto.facts()), flush=True)
    try:
        moto.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        moto.stop()

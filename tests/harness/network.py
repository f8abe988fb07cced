"""Loopback networking for tests and benchmarks: a free port, and a proxy that makes
network faults real (a slow network, a connection that dies after N bytes)."""

import socket
import threading
import time


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 in front of `target_port`.

    - `delay`: every chunk waits that many seconds before it is forwarded (a slow network);
    - `budget`: once that many bytes have gone upstream in total, every connection, open
      or new, is cut (the network dies mid-upload).
    """

    def __init__(self, target_port, delay=0.0, budget=None):
        self.target_port = target_port
        self.delay = delay
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
        return self.budget is not None and self.forwarded >= self.budget

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

    def pump(self, src, dst, upstream):
        try:
            for chunk in iter(lambda: src.recv(65536), b""):
                if self.delay:
                    time.sleep(self.delay)
                if upstream and self.budget is not None:
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

# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups in an S3 bucket (option s3), through boto3; also S3-compatible stores (endpoint_url).

A writer holds at most one part in memory: small objects become one
put_object at commit, larger ones a multipart upload created at the first
full part and completed at commit, so nothing is visible under a key until
then. Every boto3/botocore failure becomes one StorageError sentence naming
the option, with the secret key and session token redacted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import re
import uuid

try:
    import boto3
    import botocore
    import botocore.config
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

from ansible_collections.pgops.runbook.plugins.module_utils.errors import redact
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import ObjectInfo, Storage, StorageError, Writer, check_key

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 16 * MIB
MAX_PARTS = 10000
SERVER_SIDE_ENCRYPTION = ("AES256", "aws:kms")
PROBE_PREFIX = ".pgops-write-probe-"

_MISSING = ("404", "NoSuchKey", "NotFound")
_DENIED = ("403", "AccessDenied", "Forbidden", "AllAccessDisabled")
_BAD_TOKEN = ("ExpiredToken", "InvalidToken", "TokenRefreshRequired")
_ERRNO_RE = re.compile(r"\[Errno -?\d+\]\s*([^'\"\)]+)")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _secret_forms(secrets):
    """Every way a secret can appear in a library's message: as given, stripped, line by line, escaped."""
    forms = set()
    for secret in secrets:
        if secret:
            forms.update([secret, secret.strip(), repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1]])
            forms.update(secret.splitlines())
    return sorted((form for form in forms if form.strip()), key=len, reverse=True)


def _reason(exc):
    """The short cause of a connection failure: 'Connection refused', 'Remote end closed connection ...'."""
    inner = getattr(exc, "kwargs", {}).get("error", exc)
    # urllib3 wraps the socket error: ProtocolError('Connection aborted.', RemoteDisconnected(...)).
    for dummy in range(5):
        if inner.args and isinstance(inner.args[-1], BaseException):
            inner = inner.args[-1]
    text = str(inner)
    match = _ERRNO_RE.search(text)
    if match:
        return match.group(1).strip().rstrip(".")
    return (text.strip() or type(inner).__name__).rstrip(".")


class S3Storage(Storage):
    """Objects under `prefix` in `bucket`; credentials from the keys, a profile, or boto3's default chain."""

    def __init__(self, bucket, prefix="", region=None, endpoint_url=None, access_key=None, secret_key=None,
                 session_token=None, profile=None, server_side_encryption=None, kms_key_id=None, storage_class=None,
                 part_size=DEFAULT_PART_SIZE, option="s3", max_attempts=5, connect_timeout=10, read_timeout=60):
        self.option = option
        self.secrets = _secret_forms([secret_key, session_token])
        if not HAS_BOTO3:
            raise StorageError("The boto3 Python library is required for option %s (pip install boto3)." % option)
        for name, value in (("access_key", access_key), ("secret_key", secret_key), ("session_token", session_token)):
            # A credential read from a file often ends in a newline; HTTP libraries then quote it in their errors.
            if value and _CONTROL_RE.search(value):
                raise StorageError("Option %s.%s: contains a line break or another control character "
                                   "(a trailing newline from a file?)." % (option, name))
        if not bucket:
            raise StorageError("Option %s.bucket: a bucket name is required." % option)
        if int(part_size) < MIN_PART_SIZE:
            raise StorageError("Option %s.part_size: must be at least 5 MiB (%d bytes), got %d." % (option, MIN_PART_SIZE, part_size))
        if server_side_encryption not in (None,) + SERVER_SIDE_ENCRYPTION:
            raise StorageError("Option %s.server_side_encryption: must be one of %s, got %r."
                               % (option, ", ".join(SERVER_SIDE_ENCRYPTION), server_side_encryption))
        if kms_key_id and server_side_encryption != "aws:kms":
            raise StorageError("Option %s.kms_key_id: needs %s.server_side_encryption aws:kms." % (option, option))
        self.bucket = bucket
        self.prefix = (prefix or "").strip("/")
        self.location = "s3://%s/%s" % (bucket, self.prefix) if self.prefix else "s3://%s" % bucket
        self.part_size = int(part_size)
        # Applied to every object written: multipart uploads and single puts alike.
        self.object_args = {}
        if server_side_encryption:
            self.object_args["ServerSideEncryption"] = server_side_encryption
        if kms_key_id:
            self.object_args["SSEKMSKeyId"] = kms_key_id
        if storage_class:
            self.object_args["StorageClass"] = storage_class
        config = dict(retries={"max_attempts": max_attempts, "mode": "standard"},
                      connect_timeout=connect_timeout, read_timeout=read_timeout)
        if endpoint_url:
            # S3-compatible stores (MinIO, Ceph, a loopback server) are reached by path, not by bucket host name.
            config["s3"] = {"addressing_style": "path"}
        try:
            session = boto3.session.Session(profile_name=profile or None, aws_access_key_id=access_key or None,
                                            aws_secret_access_key=secret_key or None,
                                            aws_session_token=session_token or None, region_name=region or None)
            self.client = session.client("s3", endpoint_url=endpoint_url or None, config=botocore.config.Config(**config))
        except botocore.exceptions.ProfileNotFound:
            raise StorageError("Option %s.profile: profile %r is not configured." % (option, profile))
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise StorageError(redact("Option %s: cannot set up the S3 client: %s." % (option, exc), self.secrets))
        # Checksums the way s3transfer sends them (botocore >= 1.36 adds CRC32 to every upload;
        # a multipart upload must then declare the algorithm and list each part's checksum).
        self.checksum_algorithm = None
        if getattr(self.client.meta.config, "request_checksum_calculation", None) == "when_supported":
            self.checksum_algorithm = "CRC32"

    @property
    def endpoint(self):
        return self.client.meta.endpoint_url

    def object_key(self, key):
        """The bucket key of storage key `key`."""
        key = check_key(key, self.option)
        return self.prefix + "/" + key if self.prefix else key

    def relative_key(self, object_key):
        return object_key[len(self.prefix) + 1:] if self.prefix else object_key

    def uri(self, key):
        return "s3://%s/%s" % (self.bucket, self.object_key(key))

    def error(self, exc, action, key=None):
        """The StorageError sentence for a boto3/botocore exception met while doing `action` (on `key`)."""
        option = self.option
        target = self.uri(key) if key else "bucket %r" % self.bucket
        details = dict(operation=action, bucket=self.bucket)
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "unknown")
            details["code"] = code
            if code == "NoSuchBucket" or (code in _MISSING and key is None):
                message = "Option %s.bucket: bucket %r does not exist." % (option, self.bucket)
            elif code in _MISSING:
                message = "Option %s: %s does not exist." % (option, target)
            elif code in _DENIED:
                message = "Option %s: access denied to bucket %r (%s)." % (option, self.bucket, "AccessDenied" if code.isdigit() else code)
            elif code == "InvalidAccessKeyId":
                message = "Option %s: the S3 endpoint does not know the access key (InvalidAccessKeyId)." % option
            elif code == "SignatureDoesNotMatch":
                message = "Option %s: the secret key does not match the access key (SignatureDoesNotMatch)." % option
            elif code in _BAD_TOKEN:
                message = "Option %s: the session token is expired or invalid (%s)." % (option, code)
            else:
                text = error.get("Message") or "HTTP %s" % exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                message = "Option %s: cannot %s %s (%s: %s)." % (option, action, target, code, str(text).rstrip("."))
        elif isinstance(exc, botocore.exceptions.NoCredentialsError):
            message = ("Option %s: no AWS credentials found; give %s.access_key and %s.secret_key, %s.profile, "
                       "or configure the AWS environment variables or an instance role." % (option, option, option, option))
        elif isinstance(exc, botocore.exceptions.PartialCredentialsError):
            message = "Option %s: incomplete credentials; give both %s.access_key and %s.secret_key." % (option, option, option)
        elif isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError,
                              botocore.exceptions.SSLError, botocore.exceptions.ProxyConnectionError)):
            message = "Option %s: cannot reach the S3 endpoint %s: %s." % (option, self.endpoint, _reason(exc))
        elif isinstance(exc, (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError,
                              botocore.exceptions.IncompleteReadError)):
            message = "Option %s: the connection to the S3 endpoint %s broke while trying to %s %s: %s." % (
                option, self.endpoint, action, target, _reason(exc))
        else:
            message = "Option %s: cannot %s %s: %s." % (option, action, target, str(exc).rstrip("."))
        return StorageError(redact(message, self.secrets), details=details)

    def call(self, action, key, method, **kwargs):
        """client.<method>(**kwargs); any boto3/botocore failure raised as StorageError."""
        try:
            return getattr(self.client, method)(**kwargs)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.error(exc, action, key)

    def check_writable(self):
        # A probe write rather than HeadBucket: a backup user may be allowed to write without ListBucket,
        # and a bucket policy that demands encryption is exercised with our own settings.
        probe = PROBE_PREFIX + uuid.uuid4().hex
        self.call("write to", None, "put_object", Bucket=self.bucket, Key=self.object_key(probe), Body=b"", **self.object_args)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(probe))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            # Best effort: an append-only bucket (no DeleteObject) is still a place backups can go.
            pass

    def writer(self, key):
        return S3Writer(self, key)

    def put_atomic(self, key, data):
        self.call("upload", key, "put_object", Bucket=self.bucket, Key=self.object_key(key), Body=bytes(data), **self.object_args)

    def reader(self, key):
        response = self.call("download", key, "get_object", Bucket=self.bucket, Key=self.object_key(key))
        return S3Reader(self, key, response["Body"])

    def list(self, prefix=""):
        search = self.prefix + "/" + prefix if self.prefix else prefix
        result = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=search):
                for item in page.get("Contents", ()):
                    if item["Key"].endswith("/"):  # a "folder" marker made by a console
                        continue
                    result.append(ObjectInfo(self.relative_key(item["Key"]), item["Size"], _epoch(item["LastModified"])))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.error(exc, "list", None)
        return sorted(result, key=lambda info: info.key)

    def delete(self, keys):
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            response = self.call("delete objects in", None, "delete_objects", Bucket=self.bucket,
                                 Delete={"Objects": [{"Key": self.object_key(key)} for key in batch], "Quiet": True})
            for failure in response.get("Errors", ()):
                raise StorageError(redact("Option %s: cannot delete s3://%s/%s (%s: %s)." % (
                    self.option, self.bucket, failure.get("Key"), failure.get("Code"), failure.get("Message")), self.secrets),
                    details=dict(operation="delete", bucket=self.bucket, code=failure.get("Code")))

    def exists(self, key):
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return False
            raise self.error(exc, "look up", key)
        except botocore.exceptions.BotoCoreError as exc:
            raise self.error(exc, "look up", key)
        return True

    def multipart_uploads(self, prefix=""):
        """(bucket key, upload id) of every multipart upload in progress under `prefix`."""
        search = self.prefix + "/" + prefix if self.prefix else prefix
        uploads = []
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=search):
                uploads.extend((item["Key"], item["UploadId"]) for item in page.get("Uploads", ()))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.error(exc, "list the multipart uploads in", None)
        return sorted(uploads)

    def incomplete_uploads(self, prefix=""):
        return [self.relative_key(object_key) for object_key, dummy in self.multipart_uploads(prefix)]

    def discard_incomplete(self, prefix=""):
        discarded = []
        for object_key, upload_id in self.multipart_uploads(prefix):
            key = self.relative_key(object_key)
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=object_key, UploadId=upload_id)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise self.error(exc, "abort the upload of", key)
            except botocore.exceptions.BotoCoreError as exc:
                raise self.error(exc, "abort the upload of", key)
            discarded.append(key)
        return discarded


def _epoch(moment):
    """Epoch seconds of the timezone-aware datetime boto3 returns."""
    return moment.timestamp()


class S3Reader:
    """The streaming body of one object: read(n) and close(), failures as StorageError."""

    def __init__(self, storage, key, body):
        self.storage = storage
        self.key = key
        self.body = body

    def read(self, size=-1):
        try:
            return self.body.read(None if size is None or size < 0 else size)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self.storage.error(exc, "download", self.key)
        except (OSError, ValueError) as exc:
            raise StorageError(redact("Option %s: the download of %s broke: %s." % (
                self.storage.option, self.storage.uri(self.key), exc), self.storage.secrets))

    def readable(self):
        return True

    def close(self):
        self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self.close()
        return False


class S3Writer(Writer):
    """One object: a single put_object when it fits in one part, a multipart upload otherwise."""

    def __init__(self, storage, key):
        self.storage = storage
        self.key = key
        self.object_key = storage.object_key(key)
        self.buffer = io.BytesIO()
        self.buffered = 0
        self.bytes_written = 0
        self.upload_id = None
        self.parts = []
        self.state = "open"
        self.abort_error = None

    def _require_open(self, action):
        if self.state != "open":
            raise StorageError("Option %s: cannot %s %s: the writer is %s." % (self.storage.option, action, self.storage.uri(self.key), self.state))

    def _call(self, action, method, **kwargs):
        try:
            return self.storage.call(action, self.key, method, **kwargs)
        except StorageError:
            self.state = "failed"
            self.buffer = io.BytesIO()
            self.buffered = 0
            raise

    def write(self, data):
        self._require_open("write")
        view = memoryview(data)
        while len(view):
            room = self.storage.part_size - self.buffered
            self.buffer.write(view[:room])
            taken = min(room, len(view))
            self.buffered += taken
            view = view[taken:]
            if self.buffered == self.storage.part_size:
                self._upload_part()
        self.bytes_written += len(data)

    def _upload_part(self):
        storage = self.storage
        extra = {}
        if storage.checksum_algorithm:
            extra["ChecksumAlgorithm"] = storage.checksum_algorithm
        if self.upload_id is None:
            response = self._call("start a multipart upload of", "create_multipart_upload", Bucket=storage.bucket,
                                  Key=self.object_key, **dict(storage.object_args, **extra))
            self.upload_id = response["UploadId"]
        number = len(self.parts) + 1
        if number > MAX_PARTS:
            self.state = "failed"
            raise StorageError("Option %s.part_size: %s is larger than %d parts of %d bytes; raise %s.part_size."
                               % (storage.option, storage.uri(self.key), MAX_PARTS, storage.part_size, storage.option))
        body, self.buffer, self.buffered = self.buffer, io.BytesIO(), 0
        body.seek(0)
        response = self._call("upload part %d of" % number, "upload_part", Bucket=storage.bucket, Key=self.object_key,
                              UploadId=self.upload_id, PartNumber=number, Body=body, **extra)
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if storage.checksum_algorithm:
            member = "Checksum" + storage.checksum_algorithm
            if member in response:
                part[member] = response[member]
        self.parts.append(part)

    def commit(self):
        self._require_open("commit")
        storage = self.storage
        if self.upload_id is None:
            self.buffer.seek(0)
            self._call("upload", "put_object", Bucket=storage.bucket, Key=self.object_key, Body=self.buffer, **storage.object_args)
        else:
            if self.buffered:
                self._upload_part()
            self._call("complete the multipart upload of", "complete_multipart_upload", Bucket=storage.bucket,
                       Key=self.object_key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts})
        self.buffer = io.BytesIO()
        self.buffered = 0
        self.state = "committed"

    def abort(self):
        if self.state in ("committed", "aborted"):
            return
        self.buffer = io.BytesIO()
        self.buffered = 0
        if self.upload_id is not None:
            storage = self.storage
            try:
                storage.client.abort_multipart_upload(Bucket=storage.bucket, Key=self.object_key, UploadId=self.upload_id)
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    self.abort_error = storage.error(exc, "abort the upload of", self.key)
                    self.state = "failed"
                    return
            except botocore.exceptions.BotoCoreError as exc:
                self.abort_error = storage.error(exc, "abort the upload of", self.key)
                self.state = "failed"
                return
        self.abort_error = None
        self.state = "aborted"

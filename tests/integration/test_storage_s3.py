"""S3Storage against a real S3 API on loopback (moto_server over HTTP, through boto3).

Faults are real: a closed port, a proxy that cuts the network in the middle of an
upload, a server that checks credentials. Objects stay small except where the size
is the point (moto keeps everything in memory)."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from tests.harness.collection import COLLECTIONS_PATH
from tests.harness.network import LoopbackProxy, free_port
from tests.harness.s3 import MotoServer, client_for

from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
from ansible_collections.pgops.runbook.plugins.module_utils.storage.base import StorageError
from ansible_collections.pgops.runbook.plugins.module_utils.storage.s3 import S3Storage

MIB = 1024 * 1024
SECRET = "S3-Secret-Key-XYZ"
TOKEN = "S3-Session-Token-XYZ"
PREFIX = "backups/prod"


@pytest.fixture
def bucket(s3):
    """A fresh bucket, emptied and removed afterwards (moto's memory is ours to give back)."""
    name = "pgops-%s" % uuid.uuid4().hex[:12]
    client = client_for(s3)
    client.create_bucket(Bucket=name)
    yield name
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", ()):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


def storage_for(s3, bucket, endpoint_url=None, **options):
    options.setdefault("prefix", PREFIX)
    return S3Storage(bucket, region=s3["region"], endpoint_url=endpoint_url or s3["endpoint_url"],
                     access_key=s3["access_key"], secret_key=options.pop("secret_key", s3["secret_key"]), **options)


def chunks(total, size=MIB, seed=b"pgops"):
    """`total` bytes of varied, reproducible data in pieces of `size`."""
    block = hashlib.sha256(seed).digest() * (size // 32 + 1)
    for number in range(0, total, size):
        piece = block[:min(size, total - number)]
        yield number.to_bytes(8, "big") + piece[8:]


def sha256_of_reader(handle, size=MIB):
    digest = hashlib.sha256()
    try:
        for piece in iter(lambda: handle.read(size), b""):
            digest.update(piece)
    finally:
        handle.close()
    return digest.hexdigest()


def uploads_in_progress(s3, bucket):
    return client_for(s3).list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_a_large_object_goes_up_in_parts_and_streams_back_identical(s3, bucket):
    storage = storage_for(s3, bucket, part_size=5 * MIB)
    storage.check_writable()
    expected = hashlib.sha256()
    with storage.writer("2026-01-01/db.dump") as writer:
        for piece in chunks(40 * MIB):
            expected.update(piece)
            writer.write(piece)
        # Mid-upload: a multipart upload in progress, nothing under the key yet.
        assert storage.incomplete_uploads() == ["2026-01-01/db.dump"]
        assert not storage.exists("2026-01-01/db.dump")
        writer.commit()
    assert writer.bytes_written == 40 * MIB
    head = client_for(s3).head_object(Bucket=bucket, Key=PREFIX + "/2026-01-01/db.dump")
    assert head["ContentLength"] == 40 * MIB
    assert head["ETag"].strip('"').endswith("-8")  # eight 5 MiB parts
    assert sha256_of_reader(storage.reader("2026-01-01/db.dump")) == expected.hexdigest()
    assert storage.incomplete_uploads() == []
    assert uploads_in_progress(s3, bucket) == []
    assert storage.uri("2026-01-01/db.dump") == "s3://%s/%s/2026-01-01/db.dump" % (bucket, PREFIX)


def test_a_small_object_is_one_encrypted_put_at_commit(s3, bucket):
    storage = storage_for(s3, bucket, server_side_encryption="AES256", storage_class="STANDARD_IA")
    with storage.writer("db.dump") as writer:
        writer.write(b"small dump")
        assert storage.incomplete_uploads() == [] and not storage.exists("db.dump")
        writer.commit()
    head = client_for(s3).head_object(Bucket=bucket, Key=PREFIX + "/db.dump")
    assert "-" not in head["ETag"]
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"
    assert storage.get("db.dump") == b"small dump"


def test_encryption_applies_to_multipart_objects_and_manifests_too(s3, bucket):
    storage = storage_for(s3, bucket, server_side_encryption="AES256", part_size=5 * MIB)
    with storage.writer("db.dump") as writer:
        for piece in chunks(6 * MIB):
            writer.write(piece)
        writer.commit()
    storage.put_atomic("manifest.json", b"{}")
    client = client_for(s3)
    for key in ("db.dump", "manifest.json"):
        assert client.head_object(Bucket=bucket, Key=PREFIX + "/" + key)["ServerSideEncryption"] == "AES256"


def test_put_get_list_exists_delete_below_the_prefix(s3, bucket):
    storage = storage_for(s3, bucket)
    other = storage_for(s3, bucket, prefix="backups/staging")
    other.put_atomic("x.dump", b"not ours")
    for key, size in (("2026-01-02/db.dump", 30), ("2026-01-01/db.dump", 10), ("2026-01-01/manifest.json", 5)):
        storage.put_atomic(key, b"z" * size)
    listing = storage.list()
    assert [(info.key, info.size) for info in listing] == [
        ("2026-01-01/db.dump", 10), ("2026-01-01/manifest.json", 5), ("2026-01-02/db.dump", 30)]
    assert all(abs(info.modified - time.time()) < 120 for info in listing)
    assert [info.key for info in storage.list("2026-01-01/")] == ["2026-01-01/db.dump", "2026-01-01/manifest.json"]
    assert storage.exists("2026-01-01/manifest.json") and not storage.exists("2026-01-03/db.dump")
    storage.delete(["2026-01-01/db.dump", "2026-01-01/manifest.json", "never/was.dump"])
    assert [info.key for info in storage.list()] == ["2026-01-02/db.dump"]
    assert other.get("x.dump") == b"not ours"
    with pytest.raises(StorageError) as caught:
        storage.get("2026-01-01/db.dump")
    assert str(caught.value) == "Option s3: s3://%s/%s/2026-01-01/db.dump does not exist." % (bucket, PREFIX)


def test_list_pages_through_more_than_a_thousand_objects(s3, bucket):
    storage = storage_for(s3, bucket, prefix="many")
    client = client_for(s3)
    for number in range(1005):
        client.put_object(Bucket=bucket, Key="many/%04d" % number, Body=b"")
    keys = [info.key for info in storage.list()]
    assert keys == ["%04d" % number for number in range(1005)]
    storage.delete(keys)
    assert storage.list() == []


def test_abort_leaves_no_object_and_no_upload_in_progress(s3, bucket):
    storage = storage_for(s3, bucket, part_size=5 * MIB)
    writer = storage.writer("db.dump")
    for piece in chunks(11 * MIB):
        writer.write(piece)
    assert len(uploads_in_progress(s3, bucket)) == 1
    writer.abort()
    assert writer.abort_error is None
    assert uploads_in_progress(s3, bucket) == []
    assert not storage.exists("db.dump") and storage.list() == []
    with pytest.raises(StorageError, match="aborted"):
        writer.commit()


def test_an_exception_in_the_with_block_aborts_the_upload(s3, bucket):
    storage = storage_for(s3, bucket, part_size=5 * MIB)
    with pytest.raises(RuntimeError, match="pg_dump exited with 1"):
        with storage.writer("db.dump") as writer:
            for piece in chunks(7 * MIB):
                writer.write(piece)
            raise RuntimeError("pg_dump exited with 1")
    assert uploads_in_progress(s3, bucket) == []
    assert client_for(s3).list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_a_missing_bucket_is_named_before_any_data_is_written(s3):
    storage = storage_for(s3, "pgops-no-such-bucket", secret_key=SECRET)
    with pytest.raises(StorageError) as caught:
        storage.check_writable()
    assert str(caught.value) == "Option s3.bucket: bucket 'pgops-no-such-bucket' does not exist."
    with pytest.raises(StorageError, match="^Option s3.bucket: bucket 'pgops-no-such-bucket' does not exist.$"):
        storage.put_atomic("manifest.json", b"{}")
    assert SECRET not in str(caught.value)


def test_an_unreachable_endpoint_fails_fast_with_one_sentence(bucket, s3):
    closed = "http://127.0.0.1:%d" % free_port()
    storage = storage_for(s3, bucket, endpoint_url=closed, secret_key=SECRET, max_attempts=2)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        storage.check_writable()
    assert time.monotonic() - started < 5
    assert str(caught.value) == "Option s3: cannot reach the S3 endpoint %s: Connection refused." % closed
    assert SECRET not in str(caught.value)


def test_the_network_dying_mid_upload_fails_and_the_upload_can_still_be_cleaned_up(s3, bucket):
    proxy = LoopbackProxy(s3["port"], budget=12 * MIB)  # two 5 MiB parts get through, the third is cut
    try:
        through_proxy = storage_for(s3, bucket, endpoint_url=proxy.endpoint_url, secret_key=SECRET,
                                    part_size=5 * MIB, max_attempts=2, connect_timeout=2, read_timeout=5)
        direct = storage_for(s3, bucket)
        started = time.monotonic()
        writer = through_proxy.writer("db.dump")
        with pytest.raises(StorageError) as caught:
            with writer:
                for piece in chunks(40 * MIB):
                    writer.write(piece)
                writer.commit()
        assert time.monotonic() - started < 20
        message = str(caught.value)
        assert message.startswith("Option s3: ") and proxy.endpoint_url in message, message
        assert "part 3" in message, message
        assert SECRET not in message
        assert proxy.cut and len(writer.parts) == 2
        # The with-block aborted, but the abort could not get through either: recorded, not raised.
        assert writer.abort_error is not None and SECRET not in str(writer.abort_error)
        assert direct.incomplete_uploads() == ["db.dump"]
        assert direct.discard_incomplete() == ["db.dump"]
    finally:
        proxy.close()
    assert uploads_in_progress(s3, bucket) == []
    assert not direct.exists("db.dump") and direct.list() == []


def test_credentials_problems_are_one_sentence_without_the_secret(tmp_path):
    # A server that checks credentials after the first three requests, which create a user and a bucket.
    server = MotoServer(free_actions=3).start()
    try:
        facts = server.facts()
        iam = client_for(facts, "iam")
        iam.create_user(UserName="backup")
        key = iam.create_access_key(UserName="backup")["AccessKey"]
        client_for(facts).create_bucket(Bucket="pgops-locked")

        def failure(access_key, secret_key, session_token=None):
            storage = S3Storage("pgops-locked", region=facts["region"], endpoint_url=facts["endpoint_url"],
                                access_key=access_key, secret_key=secret_key, session_token=session_token)
            with pytest.raises(StorageError) as caught:
                storage.check_writable()
            return caught.value

        wrong_secret = failure(key["AccessKeyId"], SECRET, TOKEN)
        no_permission = failure(key["AccessKeyId"], key["SecretAccessKey"])
        unknown_key = failure("AKIAPGOPSUNKNOWN0000", SECRET)
    finally:
        server.stop()
    assert str(wrong_secret) in ("Option s3: the secret key does not match the access key (SignatureDoesNotMatch).",
                                 "Option s3: the session token is expired or invalid (InvalidToken).")
    assert str(no_permission) == "Option s3: access denied to bucket 'pgops-locked' (AccessDenied)."
    assert str(unknown_key) == "Option s3: the S3 endpoint does not know the access key (InvalidAccessKeyId)."
    for error in (wrong_secret, no_permission, unknown_key):
        everything = "%s %r %r" % (error, error.args, error.details)
        assert SECRET not in everything and TOKEN not in everything and key["SecretAccessKey"] not in everything


@pytest.mark.parametrize("options, message", [
    (dict(part_size=4 * MIB), "Option s3.part_size: must be at least 5 MiB"),
    (dict(server_side_encryption="DES"), "Option s3.server_side_encryption: must be one of AES256, aws:kms"),
    (dict(kms_key_id="alias/backups"), "Option s3.kms_key_id: needs s3.server_side_encryption aws:kms"),
    (dict(profile="pgops-no-such-profile"), "Option s3.profile: profile 'pgops-no-such-profile' is not configured"),
    # HTTP libraries quote a header value they refuse, so a token read with its newline would leak.
    (dict(session_token=TOKEN + "\n"), "Option s3.session_token: contains a line break"),
    (dict(secret_key=SECRET + "\r\n"), "Option s3.secret_key: contains a line break"),
])
def test_bad_options_are_refused_before_any_request(s3, options, message, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(StorageError, match="^" + message) as caught:
        storage_for(s3, "pgops-any", **options)
    assert SECRET not in str(caught.value) and TOKEN not in str(caught.value)


def test_without_boto3_the_storage_layer_imports_and_s3_asks_for_it():
    code = textwrap.dedent("""
        import sys
        sys.modules["boto3"] = None  # import boto3 now fails as if it were not installed
        from ansible_collections.pgops.runbook.plugins.module_utils.storage import local, s3
        from ansible_collections.pgops.runbook.plugins.module_utils.errors import PgopsError
        assert s3.HAS_BOTO3 is False
        try:
            s3.S3Storage("bucket")
        except PgopsError as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The boto3 Python library is required for option s3 (pip install boto3)."
    assert issubclass(StorageError, PgopsError)


MEMORY_PROBE = """
import json, os, sys
from ansible_collections.pgops.runbook.plugins.module_utils.storage.s3 import S3Storage

def peak_mib():
    # VmHWM: this process's peak resident set size since the last reset.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0

bucket, endpoint_url, part_mib, total_mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
storage = S3Storage(bucket, endpoint_url=endpoint_url, region="us-east-1", part_size=part_mib * 1024 * 1024)
storage.check_writable()  # loads botocore's models and opens the connection pool: not the writer's memory
piece = bytearray(os.urandom(1024 * 1024))
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # reset VmHWM, so the start-up peak does not hide the writer's
before = peak_mib()
with storage.writer("memory/db.dump") as writer:
    for number in range(total_mib):
        piece[:4] = number.to_bytes(4, "big")
        writer.write(bytes(piece))
    writer.commit()
print(json.dumps(dict(before=before, after=peak_mib(), written=writer.bytes_written)))
"""


def test_memory_stays_bounded_by_one_part(s3, bucket):
    """200 MiB through a writer with 8 MiB parts, in a fresh process: its peak RSS grows by about one part."""
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH, AWS_ACCESS_KEY_ID=s3["access_key"],
               AWS_SECRET_ACCESS_KEY=s3["secret_key"])
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, bucket, s3["endpoint_url"], "8", "200"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    client = client_for(s3)
    head = client.head_object(Bucket=bucket, Key="memory/db.dump")
    client.delete_object(Bucket=bucket, Key="memory/db.dump")
    assert figures["written"] == head["ContentLength"] == 200 * MIB
    assert head["ETag"].strip('"').endswith("-25")
    growth = figures["after"] - figures["before"]
    print("peak RSS growth writing 200 MiB with 8 MiB parts: %.1f MiB (from %.1f MiB)" % (growth, figures["before"]))
    assert growth < 60, figures

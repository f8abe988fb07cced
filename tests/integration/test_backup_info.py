"""backup_info and the backup_freshness health check through Ansible, on backups made for
real by the backup module (local directory and moto S3). Damage is done to real backups:
a manifest deleted, a manifest's JSON broken, a byte of a dump flipped."""

import hashlib
import json
import os
import shutil
import time

import pytest

from tests.conftest import connection_vars
from tests.harness.playbook import run_play
from tests.harness.s3 import s3_option

pytestmark = pytest.mark.integration


def backup(pg, db, **options):
    run = run_play([{"name": "backup", "pgops.runbook.backup": dict(connection_vars(pg, db=db), **options)}])
    result = run.result("backup")
    assert not result["failed"] and result["verified"], result.get("msg")
    return result


def backup_info(check=False, **options):
    run = run_play([{"name": "info", "pgops.runbook.backup_info": options}], check=check)
    return run.result("info"), run


def health(pg, db="infodb", **options):
    options.setdefault("fail_on", "never")
    options.setdefault("checks", ["backup_freshness"])
    run = run_play([{"name": "health", "pgops.runbook.health_check": dict(connection_vars(pg, db=db), **options)}])
    result = run.result("health")
    assert not result["failed"], result.get("msg")
    return dict((c["name"], c) for c in result["checks"])["backup_freshness"], run


def sha256_of(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def manifest_path(root, result):
    database = result["manifest"]["database"]
    return os.path.join(str(root), database, result["backup_id"], "manifest.json")


@pytest.fixture(scope="module")
def made(cluster, pg, s3, tmp_path_factory):
    """Four small real backups: infodb nightly (dest), infodb pre-migration (dest and S3),
    infodb2 nightly (dest), infodb nightly again (dest), in that order."""
    from tests.harness.s3 import client_for
    for db in ("infodb", "infodb2"):
        cluster.primary.execute("CREATE DATABASE %s OWNER pgops_app" % db)
        cluster.primary.execute("CREATE TABLE tiny (id int PRIMARY KEY, name text);"
                                "INSERT INTO tiny VALUES (1, 'one'), (2, 'two'), (3, 'three')", dbname=db)
    bucket = "info-%d" % int(time.time() * 1000)
    client_for(s3).create_bucket(Bucket=bucket)
    dest = tmp_path_factory.mktemp("info-backups")
    small = dict(tables=["public.tiny"])
    made = dict(dest=dest, bucket=bucket, s3=s3_option(s3, bucket))
    made["first"] = backup(pg, "infodb", dest=str(dest), label="nightly", **small)
    made["pre"] = backup(pg, "infodb", dest=str(dest), s3=made["s3"], label="pre-migration", **small)
    made["other"] = backup(pg, "infodb2", dest=str(dest), label="nightly", **small)
    made["last"] = backup(pg, "infodb", dest=str(dest), label="nightly", **small)
    return made


def copy_of(made, tmp_path):
    """The real backups, copied so that a test may damage them."""
    root = tmp_path / "copy"
    shutil.copytree(str(made["dest"]), str(root))
    return root


def ids(result):
    return [b["backup_id"] for b in result["backups"]]


def test_lists_every_backup_oldest_first_with_its_location(made):
    result, run = backup_info(dest=str(made["dest"]), s3=made["s3"])
    assert not result["failed"], result.get("msg")
    assert result["changed"] is False and result["incomplete"] == []
    first, pre, other, last = made["first"], made["pre"], made["other"], made["last"]
    assert ids(result) == [first["backup_id"], pre["backup_id"], pre["backup_id"], other["backup_id"], last["backup_id"]]
    assert result["count"] == 5
    # The two copies of the pre-migration backup: local first, then S3.
    local, remote = result["backups"][1], result["backups"][2]
    assert (local["storage"], remote["storage"]) == ("dest", "s3")
    assert local["location"] == pre["locations"][0] and remote["location"] == pre["locations"][1]
    assert remote["location"].startswith("s3://%s/prod/infodb/" % made["bucket"])
    assert remote["manifest_location"] == "s3://%s/prod/infodb/%s/manifest.json" % (made["bucket"], pre["backup_id"])
    for entry, made_by in zip(result["backups"], (first, pre, pre, other, last)):
        assert entry["sha256"] == made_by["sha256"] and entry["size_bytes"] == made_by["size_bytes"]
        assert entry["verified"] is True and entry["verification"]["status"] == "passed"
        assert entry["label"] == made_by["manifest"]["label"] and entry["database"] == made_by["manifest"]["database"]
        assert entry["finished_at"] == made_by["manifest"]["finished_at"]
        assert entry["format"] == "custom" and entry["type"] == "full"
        assert "checksum_ok" not in entry
    assert sha256_of(local["location"]) == pre["sha256"]
    assert [b["finished_at"] for b in result["backups"]] == sorted(b["finished_at"] for b in result["backups"])
    assert result["latest"]["backup_id"] == last["backup_id"] and result["latest"]["storage"] == "dest"
    assert made["s3"]["secret_key"] not in run.all_text


def test_filters_by_database_label_and_latest(made):
    pre, other, last = made["pre"], made["other"], made["last"]
    by_label, dummy = backup_info(dest=str(made["dest"]), s3=made["s3"], label="pre-migration")
    assert ids(by_label) == [pre["backup_id"]] * 2 and by_label["latest"]["storage"] == "dest"
    by_database, dummy = backup_info(dest=str(made["dest"]), database="infodb2")
    assert ids(by_database) == [other["backup_id"]]
    nightly_latest, dummy = backup_info(dest=str(made["dest"]), s3=made["s3"], database="infodb", label="nightly", latest=True)
    assert ids(nightly_latest) == [last["backup_id"]] and nightly_latest["latest"]["backup_id"] == last["backup_id"]
    # latest is the newest across both locations: S3 alone holds only the pre-migration backup.
    s3_latest, dummy = backup_info(s3=made["s3"], latest=True)
    assert ids(s3_latest) == [pre["backup_id"]] and s3_latest["latest"]["storage"] == "s3"
    none, dummy = backup_info(dest=str(made["dest"]), label="weekly", latest=True)
    assert none["backups"] == [] and none["latest"] is None and none["count"] == 0 and not none["failed"]


def test_a_failed_verification_recorded_in_the_manifest_is_excluded_by_verified_true(made, tmp_path):
    root = copy_of(made, tmp_path)
    path = manifest_path(root, made["first"])
    with open(path) as handle:
        manifest = json.load(handle)
    manifest["verification"]["status"] = "failed"
    with open(path, "w") as handle:
        json.dump(manifest, handle)
    verified, dummy = backup_info(dest=str(root), verified=True)
    assert made["first"]["backup_id"] not in ids(verified) and verified["count"] == 3
    unverified, dummy = backup_info(dest=str(root), verified=False)
    assert ids(unverified) == [made["first"]["backup_id"]]
    assert unverified["backups"][0]["verified"] is False


def test_incomplete_backups_are_reported_apart_never_as_backups(made, tmp_path):
    root = copy_of(made, tmp_path)
    os.unlink(manifest_path(root, made["first"]))
    with open(manifest_path(root, made["other"]), "r+") as handle:
        handle.truncate(40)  # cut mid-JSON, as a half-written file would be
    result, run = backup_info(dest=str(root))
    assert not result["failed"], result.get("msg")
    assert ids(result) == [made["pre"]["backup_id"], made["last"]["backup_id"]]
    incomplete = dict((i["backup_id"], i) for i in result["incomplete"])
    assert sorted(incomplete) == sorted([made["first"]["backup_id"], made["other"]["backup_id"]])
    assert incomplete[made["first"]["backup_id"]]["reason"] == "no manifest"
    assert incomplete[made["first"]["backup_id"]]["locations"] == [os.path.join(
        str(root), "infodb", made["first"]["backup_id"], "infodb.dump")]
    assert incomplete[made["other"]["backup_id"]]["reason"].startswith("unusable manifest")
    assert all(i["storage"] == "dest" for i in result["incomplete"])
    assert "Traceback" not in run.all_text
    # A database filter applies to incomplete backups too.
    only_other, dummy = backup_info(dest=str(root), database="infodb2")
    assert only_other["backups"] == [] and [i["backup_id"] for i in only_other["incomplete"]] == [made["other"]["backup_id"]]


def test_verify_checksums_finds_a_flipped_byte_and_names_the_backup(made, tmp_path):
    root = copy_of(made, tmp_path)
    intact, dummy = backup_info(dest=str(root), s3=made["s3"], verify_checksums=True)
    assert not intact["failed"], intact.get("msg")
    assert [b["checksum_ok"] for b in intact["backups"]] == [True] * 5
    dump = os.path.join(str(root), "infodb", made["last"]["backup_id"], os.path.basename(made["last"]["locations"][0]))
    with open(dump, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0x01]))
    result, run = backup_info(dest=str(root), s3=made["s3"], verify_checksums=True)
    assert result["failed"]
    assert result["msg"].startswith("1 of 5 backups do not match the sha256 in their manifest: %s (%s"
                                    % (made["last"]["backup_id"], dump)), result["msg"]
    assert result["msg"].endswith(").") and made["first"]["backup_id"] not in result["msg"]
    checked = dict(((b["backup_id"], b["storage"]), b) for b in result["backups"])
    assert checked[(made["last"]["backup_id"], "dest")]["checksum_ok"] is False
    assert "sha256" in checked[(made["last"]["backup_id"], "dest")]["checksum_error"]
    others = [b for key, b in checked.items() if key != (made["last"]["backup_id"], "dest")]
    assert len(others) == 4 and all(b["checksum_ok"] is True and "checksum_error" not in b for b in others)
    assert "Traceback" not in run.all_text
    # Only the listed backups are read: the others' checksums are not the task's business.
    older, dummy = backup_info(dest=str(root), label="pre-migration", verify_checksums=True)
    assert not older["failed"] and [b["checksum_ok"] for b in older["backups"]] == [True]
    newest, dummy = backup_info(dest=str(root), database="infodb", label="nightly", latest=True, verify_checksums=True)
    assert newest["failed"] and ids(newest) == [made["last"]["backup_id"]]


def test_check_mode_lists_the_same(made):
    normal, dummy = backup_info(dest=str(made["dest"]), verify_checksums=True)
    checked, dummy = backup_info(check=True, dest=str(made["dest"]), verify_checksums=True)
    assert not checked["failed"] and checked["changed"] is False
    assert checked["backups"] == normal["backups"] and checked["count"] == 4


def test_a_missing_location_fails_with_one_sentence(made, s3, tmp_path):
    result, run = backup_info(dest=str(tmp_path / "nope"))
    assert result["failed"] and result["msg"] == "Option dest: %s does not exist." % (tmp_path / "nope")
    result, run = backup_info(s3=s3_option(s3, "no-such-bucket"))
    assert result["failed"] and result["msg"] == "Option s3.bucket: bucket 'no-such-bucket' does not exist."
    assert s3["secret_key"] not in run.all_text
    result, run = backup_info(label="nightly")
    assert result["failed"] and "dest" in result["msg"] and "s3" in result["msg"]
    result, run = backup_info(dest=str(made["dest"]), database="../etc")
    assert result["failed"] and result["msg"].startswith("Option database must be a database name")
    assert "Traceback" not in run.all_text


def test_takes_no_connection_options(made):
    result, dummy = backup_info(dest=str(made["dest"]), login_host="127.0.0.1")
    assert result["failed"] and "login_host" in result["msg"]


# --- health_check's backup_freshness -------------------------------------------------------------------

def test_backup_freshness_grades_the_newest_verified_backup(pg, made, tmp_path):
    item, run = health(pg, backup_dest=str(made["dest"]))
    assert item["status"] == "ok", item["message"]
    assert 0 <= item["value"] < 1
    assert item["details"]["backup_id"] == made["last"]["backup_id"]
    assert item["threshold"] == {"warning_hours": 26, "critical_hours": 50}
    assert made["last"]["backup_id"] in item["message"] and str(made["dest"]) in item["message"]
    # 0 hours is reached by any backup: the thresholds are reached, not exceeded.
    warned, dummy = health(pg, backup_dest=str(made["dest"]), thresholds={"backup_freshness": {"warning_hours": 0}})
    assert warned["status"] == "warning"
    in_s3, run = health(pg, backup_s3=made["s3"])
    assert in_s3["status"] == "ok" and in_s3["details"]["backup_id"] == made["pre"]["backup_id"]
    assert in_s3["details"]["location"].startswith("s3://%s/prod/" % made["bucket"])
    assert made["s3"]["secret_key"] not in run.all_text


def test_backup_freshness_is_critical_without_a_verified_backup_of_the_database(pg, made, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    item, dummy = health(pg, backup_dest=str(empty))
    assert item["status"] == "critical" and item["value"] is None
    assert item["message"] == "No verified backup of infodb in %s." % empty
    # Backups of infodb whose verification failed do not count.
    root = copy_of(made, tmp_path)
    for name in ("first", "pre", "last"):
        path = manifest_path(root, made[name])
        with open(path) as handle:
            manifest = json.load(handle)
        manifest["verification"]["status"] = "failed"
        with open(path, "w") as handle:
            json.dump(manifest, handle)
    unverified, dummy = health(pg, backup_dest=str(root))
    assert unverified["status"] == "critical" and "No verified backup of infodb" in unverified["message"]
    # Each given location must hold one: a fresh one in S3 does not hide an empty directory.
    both, dummy = health(pg, backup_dest=str(empty), backup_s3=made["s3"])
    assert both["status"] == "critical" and made["pre"]["backup_id"] in both["message"]
    missing, run = health(pg, backup_dest=str(tmp_path / "nope"))
    assert missing["status"] == "critical" and "Option backup_dest: %s does not exist" % (tmp_path / "nope") in missing["message"]


def test_backup_freshness_is_skipped_without_a_location(pg, made):
    item, dummy = health(pg)
    assert item["status"] == "skipped"
    assert item["message"] == "Skipped: no backup location given (backup_dest or backup_s3)."

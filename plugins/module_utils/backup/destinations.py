# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup destinations options (dest, s3) -> storage backends, shared by backup,
backup_info and restore."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pgops.runbook.plugins.module_utils.storage.local import LocalStorage


def s3_argument_spec():
    """The suboptions of the s3 option."""
    return dict(
        bucket=dict(type="str", required=True),
        prefix=dict(type="str", default=""),
        region=dict(type="str"),
        endpoint_url=dict(type="str"),
        access_key=dict(type="str", no_log=True),
        secret_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
        profile=dict(type="str"),
        server_side_encryption=dict(type="str", choices=["AES256", "aws:kms"]),
        kms_key_id=dict(type="str"),
        storage_class=dict(type="str"),
    )


def storages_from_params(dest=None, s3=None, dest_option="dest", s3_option="s3"):
    """The storage backends the options name, local first (verification reads the first).
    Errors name `dest_option` / `s3_option` (health_check calls them backup_dest, backup_s3)."""
    storages = []
    if dest:
        storages.append(LocalStorage(dest, option=dest_option))
    if s3:
        storages.append(s3_storage(s3, option=s3_option))
    return storages


def s3_storage(params, option="s3"):
    """An S3Storage from the s3 option's suboptions (unset ones left to boto3's defaults)."""
    # Imported here: boto3 takes ~0.2 s to import, which every local-only run would pay.
    from ansible_collections.pgops.runbook.plugins.module_utils.storage.s3 import S3Storage
    return S3Storage(option=option, **dict((k, v) for k, v in params.items() if v not in (None, "")))

# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The s3 option of the modules that store or read backups (backup, backup_info,
    # restore): plugins/module_utils/backup/destinations.py s3_argument_spec().
    DOCUMENTATION = r'''
options:
  s3:
    description:
      - An S3 (or S3-compatible) location of backups. When the backup module writes there alone,
        the dump streams straight into a multipart upload, with no local copy and bounded memory.
    type: dict
    suboptions:
      bucket:
        description: The bucket. It must exist.
        type: str
        required: true
      prefix:
        description: Key prefix under which backups are stored.
        type: str
        default: ""
      region:
        description: The bucket's region.
        type: str
      endpoint_url:
        description: Endpoint of an S3-compatible service (MinIO, Ceph, ...).
        type: str
      access_key:
        description:
          - Access key ID. When unset, the AWS default credential chain (environment, profile,
            instance role) applies.
        type: str
      secret_key:
        description: Secret access key. Never logged.
        type: str
      session_token:
        description: Session token of temporary credentials. Never logged.
        type: str
      profile:
        description: A named profile of the AWS configuration files.
        type: str
      server_side_encryption:
        description: Server-side encryption of the stored objects.
        type: str
        choices: [ AES256, aws:kms ]
      kms_key_id:
        description: The KMS key for C(aws:kms).
        type: str
      storage_class:
        description: Storage class of the stored objects (e.g. C(STANDARD_IA)).
        type: str
'''

    # The same location under the name the modules that only read backups for a check or a
    # rehearsal use (health_check's backup_freshness, migrate's rehearse_data). The suboptions
    # repeat the ones above: ansible-test requires each fragment to be one string literal.
    BACKUP_S3 = r'''
options:
  backup_s3:
    description:
      - An S3 (or S3-compatible) location of backups made by M(pgops.runbook.backup) (its O(pgops.runbook.backup#module:s3)).
    type: dict
    suboptions:
      bucket:
        description: The bucket. It must exist.
        type: str
        required: true
      prefix:
        description: Key prefix under which backups are stored.
        type: str
        default: ""
      region:
        description: The bucket's region.
        type: str
      endpoint_url:
        description: Endpoint of an S3-compatible service (MinIO, Ceph, ...).
        type: str
      access_key:
        description:
          - Access key ID. When unset, the AWS default credential chain (environment, profile,
            instance role) applies.
        type: str
      secret_key:
        description: Secret access key. Never logged.
        type: str
      session_token:
        description: Session token of temporary credentials. Never logged.
        type: str
      profile:
        description: A named profile of the AWS configuration files.
        type: str
      server_side_encryption:
        description: Server-side encryption of the stored objects.
        type: str
        choices: [ AES256, aws:kms ]
      kms_key_id:
        description: The KMS key for C(aws:kms).
        type: str
      storage_class:
        description: Storage class of the stored objects (e.g. C(STANDARD_IA)).
        type: str
'''

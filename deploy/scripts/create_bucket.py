#!/usr/bin/env python3
"""Create and configure Soundhive's bucket (compose's ``minio-init``; also fine on AWS S3).

    create_bucket.py [--noncurrent-days 30]

Reads SOUNDHIVE_S3_BUCKET, SOUNDHIVE_S3_ENDPOINT_URL, SOUNDHIVE_S3_REGION, SOUNDHIVE_CORS_ORIGINS
and the standard AWS credentials. Idempotent: creates the bucket if missing, then makes sure of

* versioning on — a deleted or overwritten object can be recovered (docs/backup-recovery.md);
* a lifecycle rule expiring *noncurrent* versions after N days and aborting incomplete
  multipart uploads after 1 day — so deletions and orphan clean-up free space eventually;
* no public access (where the store supports the setting), and CORS for the frontend origins
  (browsers PUT uploads and GET audio straight from the bucket).

A store that does not implement one of these (MinIO has no per-bucket CORS or public-access
block) gets a warning, not a failure; versioning and lifecycle are required.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

NOT_SUPPORTED = {"NotImplemented", "NotImplementedError", "MethodNotAllowed", "XNotImplemented"}


def _client() -> Any:
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("SOUNDHIVE_S3_ENDPOINT_URL") or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("SOUNDHIVE_S3_REGION") or os.environ.get("AWS_REGION"),
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint else "auto"},
            retries={"mode": "standard", "max_attempts": 5},
        ),
    )


def _optional(step: str, call: Any, **kwargs: Any) -> str:
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
        return f"{step}: ok"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in NOT_SUPPORTED:
            return f"{step}: not supported by this store ({code}), skipped"
        raise


def configure(bucket: str, *, origins: list[str], noncurrent_days: int) -> list[str]:
    """Apply the settings above to ``bucket``; returns one line per step."""
    from botocore.exceptions import ClientError

    s3 = _client()
    steps = []
    try:
        s3.head_bucket(Bucket=bucket)
        steps.append(f"bucket {bucket}: exists")
    except ClientError:
        region = s3.meta.region_name
        extra = (
            {"CreateBucketConfiguration": {"LocationConstraint": region}}
            if region and region != "us-east-1"
            else {}
        )
        s3.create_bucket(Bucket=bucket, **extra)
        steps.append(f"bucket {bucket}: created")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    steps.append("versioning: enabled")
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "soundhive-noncurrent",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": noncurrent_days},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )
    steps.append(f"lifecycle: noncurrent versions expire after {noncurrent_days} days")
    steps.append(
        _optional(
            "public access block",
            s3.put_public_access_block,
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    )
    if origins:
        steps.append(
            _optional(
                "cors",
                s3.put_bucket_cors,
                Bucket=bucket,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedOrigins": origins,
                            "AllowedMethods": ["PUT", "GET", "HEAD"],
                            "AllowedHeaders": ["Content-Type", "If-None-Match", "Range"],
                            "ExposeHeaders": [
                                "ETag",
                                "Content-Length",
                                "Content-Range",
                                "Accept-Ranges",
                            ],
                            "MaxAgeSeconds": 3600,
                        }
                    ]
                },
            )
        )
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noncurrent-days", type=int, default=30)
    args = parser.parse_args(argv)
    bucket = os.environ.get("SOUNDHIVE_S3_BUCKET")
    if not bucket:
        print("SOUNDHIVE_S3_BUCKET is not set", file=sys.stderr)
        return 2
    origins = [
        o.strip() for o in os.environ.get("SOUNDHIVE_CORS_ORIGINS", "").split(",") if o.strip()
    ]
    for line in configure(bucket, origins=origins, noncurrent_days=args.noncurrent_days):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

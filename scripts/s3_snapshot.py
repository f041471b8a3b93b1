"""Save / restore the objects of a local S3 (LocalStack community or moto keeps
S3 in memory only, so scripts/stack.sh saves them on `down` and restores them
after the next start).

Usage: python s3_snapshot.py save|load DIR
Environment: AWS_ENDPOINT_URL (default http://127.0.0.1:4566), AWS_REGION.
Layout of DIR: manifest.json + objects/<n> (one file per object).
"""

import json
import os
import shutil
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client():
    env = os.environ.get
    return boto3.client(
        "s3",
        endpoint_url=env("AWS_ENDPOINT_URL") or "http://127.0.0.1:4566",
        region_name=env("AWS_REGION") or "us-east-1",
        aws_access_key_id=env("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY") or "test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def save(s3, target):
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "objects"))
    manifest = {"buckets": [], "objects": []}
    n = 0
    for b in s3.list_buckets().get("Buckets", []):
        bucket = b["Name"]
        manifest["buckets"].append(bucket)
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                path = os.path.join(tmp, "objects", str(n))
                resp = s3.get_object(Bucket=bucket, Key=key)
                with open(path, "wb") as f:
                    shutil.copyfileobj(resp["Body"], f)
                manifest["objects"].append(
                    {
                        "bucket": bucket,
                        "key": key,
                        "file": str(n),
                        "content_type": resp.get("ContentType"),
                        "metadata": resp.get("Metadata") or {},
                    }
                )
                n += 1
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)
    print(f"s3 snapshot: saved {n} objects from {len(manifest['buckets'])} buckets")


def load(s3, source):
    path = os.path.join(source, "manifest.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        manifest = json.load(f)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    region = s3.meta.region_name
    for bucket in manifest["buckets"]:
        if bucket not in existing:
            kwargs = {"Bucket": bucket}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                s3.create_bucket(**kwargs)
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
    for o in manifest["objects"]:
        extra = {"Metadata": o.get("metadata") or {}}
        if o.get("content_type"):
            extra["ContentType"] = o["content_type"]
        with open(os.path.join(source, "objects", o["file"]), "rb") as f:
            s3.put_object(Bucket=o["bucket"], Key=o["key"], Body=f, **extra)
    print(f"s3 snapshot: restored {len(manifest['objects'])} objects into {len(manifest['buckets'])} buckets")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("save", "load"):
        sys.exit(__doc__)
    {"save": save, "load": load}[sys.argv[1]](client(), sys.argv[2])

"""Create the project's S3 buckets (idempotent).

Runs in two places:
  * natively: scripts/stack.sh runs it with the LocalStack venv's python
    (AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT);
  * in Docker: LocalStack runs every .py in /etc/localstack/init/ready.d when it
    is ready, inside its own process via exec() (so no __name__ == "__main__"
    guard and no sys.exit here); the endpoint is then http://localhost:4566.

Environment (all optional): S3_ENDPOINT_URL / AWS_ENDPOINT_URL, AWS_REGION,
RAW_BUCKET, SITE_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def _create_buckets():
    env = os.environ.get
    endpoint = env("S3_ENDPOINT_URL") or env("AWS_ENDPOINT_URL") or "http://localhost:4566"
    region = env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1"
    raw_bucket = env("RAW_BUCKET") or "crypto-raw"
    site_bucket = env("SITE_BUCKET") or "crypto-dashboard"

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=env("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=env("AWS_SECRET_ACCESS_KEY") or "test",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )

    for bucket in (raw_bucket, site_bucket):
        try:
            s3.head_bucket(Bucket=bucket)
            print(f"create_buckets: s3://{bucket} exists")
            continue
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code"))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**kwargs)
            print(f"create_buckets: s3://{bucket} created")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                raise

    # Static website hosting for the dashboard (index.html / error.html).
    website = {
        "IndexDocument": {"Suffix": "index.html"},
        "ErrorDocument": {"Key": "error.html"},
    }
    try:
        current = s3.get_bucket_website(Bucket=site_bucket)
        same = current.get("IndexDocument") == website["IndexDocument"] and current.get(
            "ErrorDocument"
        ) == website["ErrorDocument"]
    except ClientError:
        same = False
    if not same:
        s3.put_bucket_website(Bucket=site_bucket, WebsiteConfiguration=website)
        print(f"create_buckets: s3://{site_bucket} website configuration set")


_create_buckets()

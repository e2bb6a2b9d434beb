"""The demo with a private S3 bucket as the origin: settings from the environment, and an
optional upload of the sample video (for a local S3 such as moto or MinIO)."""

from __future__ import annotations

import os
from pathlib import Path

from botocore.exceptions import ClientError

from edge_validator.origins.s3 import S3Origin
from edge_validator.origins.s3_location import S3Location
from edge_validator.settings import ValidatorSettings


def s3_validator_settings(keyring_text: str, origin: str) -> ValidatorSettings:
    """Validator settings for ``origin`` (s3://...), S3 options from PLAYGATE_S3_* and AWS_*."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("PLAYGATE_S3_", "AWS_"))}
    return ValidatorSettings.from_env(
        {**env, "PLAYGATE_KEYRING": keyring_text, "PLAYGATE_ORIGIN_URL": origin}
    )


def upload_samples(settings: ValidatorSettings, samples: Path) -> int:
    """Create the bucket if needed and upload ``samples/videos`` under the prefix."""
    assert settings.s3 is not None
    origin = S3Origin(settings.s3)
    location: S3Location = origin.location
    client = origin.client
    try:
        client.head_bucket(Bucket=location.bucket)
    except ClientError:
        client.create_bucket(Bucket=location.bucket)
    count = 0
    for path in sorted((samples / "videos").rglob("*")):
        if path.is_file():
            key = location.object_key("/" + path.relative_to(samples).as_posix())
            client.upload_file(str(path), location.bucket, key)
            count += 1
    client.close()
    return count

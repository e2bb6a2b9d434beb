"""S3 origin settings: s3:// URLs, the endpoint, the mode, and the object key mapping."""

from __future__ import annotations

import pytest

from edge_validator.core.errors import ConfigurationError
from edge_validator.origins.s3_location import S3Location
from edge_validator.settings import ValidatorSettings

KEYRING = '{"keys": {"k1": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE"}}'


def settings(**env: str) -> ValidatorSettings:
    return ValidatorSettings.from_env({"PLAYGATE_KEYRING": KEYRING, **env})


def test_origin_url_may_name_a_bucket() -> None:
    s = settings(PLAYGATE_ORIGIN_URL="s3://videos/media/", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert s.s3 is not None
    assert s.origin_url is None
    assert (s.s3.location, s.s3.mode) == (S3Location("videos", "media"), "redirect")
    assert s.s3.endpoint_url == "http://127.0.0.1:9"
    assert (s.s3.url_ttl, s.s3.url_reuse) == (60, 30)


def test_separate_setting_and_options() -> None:
    s = settings(
        PLAYGATE_S3_ORIGIN="s3://videos",
        PLAYGATE_S3_MODE="stream",
        PLAYGATE_S3_ENDPOINT_URL="https://s3.eu-west-1.amazonaws.com",
        AWS_ENDPOINT_URL="http://ignored",
        PLAYGATE_S3_URL_TTL="30",
        PLAYGATE_S3_REGION="eu-west-1",
    )
    assert s.s3 is not None
    assert s.s3.mode == "stream"
    assert s.s3.endpoint_url == "https://s3.eu-west-1.amazonaws.com"
    assert (s.s3.url_ttl, s.s3.url_reuse, s.s3.region) == (30, 15, "eu-west-1")


@pytest.mark.parametrize(
    "env",
    [
        {"PLAYGATE_ORIGIN_URL": "s3://a-bucket", "PLAYGATE_S3_ORIGIN": "s3://b-bucket"},
        {"PLAYGATE_S3_ORIGIN": "s3://a-bucket", "PLAYGATE_MEDIA_ROOT": "/srv"},
        {"PLAYGATE_S3_ORIGIN": "s3://a-bucket", "PLAYGATE_S3_MODE": "proxy"},
        {"PLAYGATE_S3_ORIGIN": "s3://a-bucket", "PLAYGATE_S3_URL_TTL": "61"},
        {
            "PLAYGATE_S3_ORIGIN": "s3://a-bucket",
            "PLAYGATE_S3_URL_TTL": "20",
            "PLAYGATE_S3_URL_REUSE": "16",
        },
        {"PLAYGATE_S3_ORIGIN": "s3://a-bucket", "PLAYGATE_S3_ENDPOINT_URL": "ftp://x"},
        {"PLAYGATE_S3_ORIGIN": "s3://Bad_Bucket"},
        {"PLAYGATE_S3_ORIGIN": "s3://a-bucket/x/../y"},
        {"PLAYGATE_S3_ORIGIN": "s3://a-bucket//y"},
        {"PLAYGATE_ORIGIN_URL": "s4://a-bucket"},
    ],
)
def test_ambiguous_or_bad_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        settings(**env)


def test_object_key_is_prefix_plus_validated_path() -> None:
    assert (
        S3Location.parse("s3://videos/media/").object_key("/videos/1/a.ts") == "media/videos/1/a.ts"
    )
    assert S3Location.parse("s3://videos").object_key("/videos/1/a.ts") == "videos/1/a.ts"
    assert str(S3Location.parse("s3://videos/a/b/")) == "s3://videos/a/b"
    with pytest.raises(ValueError, match="grant path"):
        S3Location("videos", "").object_key("videos/1/a.ts")

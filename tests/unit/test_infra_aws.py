"""The CloudFormation template: valid by cfn-lint, and deny by default by construction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode_str

from tests.support.factories import ROOT

TEMPLATE = ROOT / "infra" / "aws" / "playgate.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    assert CFN_LINT.exists(), "cfn-lint is required; ./scripts/install installs it"
    return subprocess.run(
        [str(CFN_LINT), "--format", "parseable", "--include-checks", "I", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    doc, errors = decode_str(TEMPLATE.read_text())
    assert not errors
    assert doc is not None
    return dict(doc)


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]
    assert found, kind
    return found


def test_cfn_lint_passes_and_catches_a_broken_copy(tmp_path: Path) -> None:
    clean = cfn_lint(TEMPLATE)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("https-only", "sometimes-https"))
    assert cfn_lint(broken).returncode != 0  # the linter really validates this template


def test_bucket_is_private(template: dict[str, Any]) -> None:
    (bucket,) = resources(template, "AWS::S3::Bucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    (policy,) = resources(template, "AWS::S3::BucketPolicy")
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]
    assert "distribution/${Distribution}" in str(source_arn)


def test_origin_access_control_signs_every_request(template: dict[str, Any]) -> None:
    (oac,) = resources(template, "AWS::CloudFront::OriginAccessControl")
    config = oac["OriginAccessControlConfig"]
    assert (config["SigningBehavior"], config["SigningProtocol"]) == ("always", "sigv4")
    (dist,) = resources(template, "AWS::CloudFront::Distribution")
    (origin,) = dist["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}


def test_every_request_is_validated_before_the_cache(template: dict[str, Any]) -> None:
    (dist,) = resources(template, "AWS::CloudFront::Distribution")
    config = dist["DistributionConfig"]
    assert "CacheBehaviors" not in config  # one behaviour: no unprotected path
    default = config["DefaultCacheBehavior"]
    assert default["ViewerProtocolPolicy"] == "https-only"
    # OPTIONS reaches the function too, which answers preflights itself.
    assert default["AllowedMethods"] == ["GET", "HEAD", "OPTIONS"]
    assert default["CachedMethods"] == ["GET", "HEAD"]
    (association,) = default["LambdaFunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    assert association["LambdaFunctionARN"] == {"Ref": "EdgeFunctionVersion"}
    (function,) = resources(template, "AWS::Lambda::Function")
    assert function["Handler"] == "edge_validator.lambda_edge.handler"
    assert "Environment" not in function  # Lambda@Edge has none; the key ring is baked in


def test_cache_key_never_holds_the_token(template: dict[str, Any]) -> None:
    (policy,) = resources(template, "AWS::CloudFront::CachePolicy")
    params = policy["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert params["QueryStringsConfig"] == {"QueryStringBehavior": "none"}
    assert params["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert params["CookiesConfig"] == {"CookieBehavior": "none"}
    (dist,) = resources(template, "AWS::CloudFront::Distribution")
    default = dist["DistributionConfig"]["DefaultCacheBehavior"]
    assert default["CachePolicyId"] == {"Ref": "CachePolicy"}
    assert "OriginRequestPolicyId" not in default  # nothing beyond the key reaches S3


def test_web_players_on_other_origins_read_media_and_reasons(template: dict[str, Any]) -> None:
    (policy,) = resources(template, "AWS::CloudFront::ResponseHeadersPolicy")
    cors = policy["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cors["AccessControlAllowCredentials"] is False  # the token is the credential
    assert cors["AccessControlAllowOrigins"]["Items"] == {"Ref": "PlayerOrigins"}
    assert "X-PlayGate-Reason" in cors["AccessControlExposeHeaders"]["Items"]
    (dist,) = resources(template, "AWS::CloudFront::Distribution")
    default = dist["DistributionConfig"]["DefaultCacheBehavior"]
    assert default["ResponseHeadersPolicyId"] == {"Ref": "CorsHeadersPolicy"}


def test_bucket_cors_lets_redirected_players_read_presigned_objects(
    template: dict[str, Any],
) -> None:
    """Redirect mode: after a cross-origin redirect a browser sends Origin: null, so the rule
    allows any origin; reading still needs a presigned URL (the bucket stays private)."""
    (bucket,) = resources(template, "AWS::S3::Bucket")
    (rule,) = bucket["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["GET", "HEAD"]
    assert rule["AllowedOrigins"] == ["*"]
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_a_certificate_gets_a_tls_12_policy_and_the_default_is_documented(
    template: dict[str, Any],
) -> None:
    params = template["Parameters"]
    assert params["CertificateArn"]["Default"] == ""
    assert all(v.startswith("TLSv1.2") for v in params["MinimumProtocolVersion"]["AllowedValues"])
    assert "TLSv1" in params["CertificateArn"]["Description"]  # what the default allows
    (distribution,) = resources(template, "AWS::CloudFront::Distribution")
    condition, custom, default = distribution["DistributionConfig"]["ViewerCertificate"]["Fn::If"]
    assert condition == "HasCertificate"
    assert custom["MinimumProtocolVersion"] == {"Ref": "MinimumProtocolVersion"}
    assert custom["SslSupportMethod"] == "sni-only"
    assert default == {"CloudFrontDefaultCertificate": True}


def test_access_logs_stay_off_and_the_template_says_why(template: dict[str, Any]) -> None:
    (distribution,) = resources(template, "AWS::CloudFront::Distribution")
    assert "Logging" not in distribution["DistributionConfig"]
    assert "RealtimeLogConfigArn" not in str(distribution)
    text = TEMPLATE.read_text()
    assert "record the viewer's request URI and query string" in text
    # checkov's "enable access logging" is answered where it is raised, with the reason.
    (dist,) = [r for r in template["Resources"].values() if r["Type"].endswith("Distribution")]
    (skip,) = dist["Metadata"]["checkov"]["skip"]
    assert skip["id"] == "CKV_AWS_86"
    assert "token" in skip["comment"]

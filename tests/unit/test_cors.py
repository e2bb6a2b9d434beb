"""The CORS policy (edge_validator/core/cors.py) and its two stdlib adapters: the nginx template
rendering and the Lambda@Edge responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_validator.core.cors import CorsPolicy, parse_origins
from edge_validator.core.errors import ConfigurationError, CorsRefused
from edge_validator.env import Env
from edge_validator.lambda_edge import cors_from_config, make_handler
from playgate.nginx.config import EdgeConfig, render
from tests.support import factories

APP = "https://app.example"
NOW = 1_900_000_000.0


@pytest.mark.parametrize(
    "text",
    [
        "https://app.example/",  # a trailing slash is not an origin: refused, never repaired
        "https://app.example/player",
        "HTTPS://APP.EXAMPLE",
        "app.example",
        "ftp://app.example",
        '"https://a.example";',
        "*, https://app.example",
        "https://app.example include x",
    ],
)
def test_origins_that_are_not_origins_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_origins(text)


def test_origins_are_read_through_env() -> None:
    env = Env(
        {"PLAYGATE_CORS_ORIGINS": f"{APP}, http://127.0.0.1:8082", "PLAYGATE_CORS_MAX_AGE": "60"}
    )
    assert env.cors() == CorsPolicy((APP, "http://127.0.0.1:8082"), 60)
    assert not Env({}).cors().enabled
    with pytest.raises(ConfigurationError, match="PLAYGATE_CORS_MAX_AGE"):
        Env({"PLAYGATE_CORS_MAX_AGE": "-1"}).cors()


def test_a_listed_origin_is_reflected_with_vary() -> None:
    cors = CorsPolicy((APP,))
    headers = cors.response_headers(APP)
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "X-PlayGate-Reason" in headers["Access-Control-Expose-Headers"]
    assert headers["Vary"] == "Origin"
    assert cors.response_headers("https://evil.example") == {"Vary": "Origin"}
    assert cors.response_headers(None) == {"Vary": "Origin"}
    assert "Access-Control-Allow-Credentials" not in headers


def test_any_origin_and_no_cors() -> None:
    assert CorsPolicy(("*",)).response_headers(None)["Access-Control-Allow-Origin"] == "*"
    assert CorsPolicy().response_headers(APP) == {}


def test_preflight() -> None:
    cors = CorsPolicy((APP,), 120)
    answer = cors.preflight(APP, "GET", "range")
    assert answer["Access-Control-Allow-Origin"] == APP
    assert answer["Access-Control-Allow-Methods"] == "GET, HEAD"
    assert answer["Access-Control-Allow-Headers"] == "Range"
    assert answer["Access-Control-Max-Age"] == "120"
    # A CAT in its header (renewal by header, docs/cat.md), as a browser asks: lower case, sorted.
    both = cors.preflight(APP, "GET", "cta-common-access-token,range")
    assert both["Access-Control-Allow-Headers"] == "Range, CTA-Common-Access-Token"
    assert "CTA-Common-Access-Token" in cors.response_headers(APP)["Access-Control-Expose-Headers"]
    for origin, method, headers in [
        ("https://evil.example", "GET", None),
        (APP, "POST", None),
        (APP, "GET", "authorization"),
        (APP, "GET", "range, cta-common-access-token, cookie"),
        (None, "GET", None),
    ]:
        with pytest.raises(CorsRefused):
            cors.preflight(origin, method, headers)


def test_nginx_renders_the_policy(tmp_path: Path) -> None:
    def rendered(cors: CorsPolicy) -> str:
        config = EdgeConfig(
            listen="127.0.0.1:8088",
            validator_url="http://127.0.0.1:8081",
            origin_url="http://127.0.0.1:9000",
            prefix=tmp_path,
            cors=cors,
        )
        return render(config)

    listed = rendered(CorsPolicy((APP, "http://127.0.0.1:8082"), 90))
    assert f'"{APP}" $http_origin;' in listed
    assert '"http://127.0.0.1:8082" $http_origin;' in listed
    assert "add_header Vary Origin always;" in listed
    assert "add_header Access-Control-Max-Age 90 always;" in listed
    assert 'default "*";' in rendered(CorsPolicy(("*",)))
    off = rendered(CorsPolicy())
    assert '"*"' not in off
    assert "$http_origin;" not in off


# -- Lambda@Edge -------------------------------------------------------------------------------


def cf_event(method: str, uri: str, headers: dict[str, str]) -> dict[str, Any]:
    request = {
        "clientIp": "203.0.113.9",
        "method": method,
        "uri": uri,
        "querystring": "",
        "headers": {k.lower(): [{"key": k, "value": v}] for k, v in headers.items()},
    }
    return {"Records": [{"cf": {"request": request}}]}


def lambda_run(event: dict[str, Any], cors: CorsPolicy) -> dict[str, Any]:
    verifier = factories.verifier(factories.keyring())
    return make_handler(lambda: verifier, lambda: NOW, lambda: cors)(event, None)


def test_lambda_denials_carry_cors_headers() -> None:
    event = cf_event("GET", "/videos/demo/master.m3u8", {"Origin": APP})
    result = lambda_run(event, CorsPolicy((APP,)))
    assert result["status"] == "401"
    headers = result["headers"]
    assert headers["access-control-allow-origin"] == [
        {"key": "Access-Control-Allow-Origin", "value": APP}
    ]
    assert "X-PlayGate-Reason" in headers["access-control-expose-headers"][0]["value"]
    other = lambda_run(
        cf_event("GET", "/videos/demo/x.ts", {"Origin": "https://evil.example"}), CorsPolicy((APP,))
    )
    assert "access-control-allow-origin" not in other["headers"]


def test_lambda_answers_preflights() -> None:
    preflight = {"Origin": APP, "Access-Control-Request-Method": "GET"}
    result = lambda_run(
        cf_event("OPTIONS", "/t/x/videos/demo/master.m3u8", preflight), CorsPolicy((APP,))
    )
    assert result["status"] == "204"
    assert result["headers"]["access-control-allow-methods"][0]["value"] == "GET, HEAD"
    refused = lambda_run(
        cf_event("OPTIONS", "/t/x/videos/demo/master.m3u8", preflight),
        CorsPolicy(("https://other.example",)),
    )
    assert refused["status"] == "403"
    assert refused["headers"]["x-playgate-reason"][0]["value"] == "cors_refused"
    assert "access-control-allow-origin" not in refused["headers"]
    # A plain OPTIONS (no Access-Control-Request-Method) is still refused as a method.
    plain = lambda_run(cf_event("OPTIONS", "/videos/demo/master.m3u8", {}), CorsPolicy((APP,)))
    assert plain["status"] == "405"


def test_lambda_reads_the_baked_policy() -> None:
    assert cors_from_config('{"keys": {}}') == CorsPolicy()
    text = '{"cors": {"origins": "https://app.example", "max_age": 30}}'
    assert cors_from_config(text) == CorsPolicy((APP,), 30)

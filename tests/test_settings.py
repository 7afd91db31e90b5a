"""crmcore.settings: CRMAGENTO_ variables and .env files in, clear ConfigErrors out, secrets never shown."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from crmcore.settings import ConfigError, Settings, StockLink, env_name, load_settings
from tests.support.signing import ADMIN_TOKEN, CR_SECRET, CR_SECRET_NEXT, MAGENTO_SECRET

REDIS_PASSWORD = "redis-pw-Zq81xx"
REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/3"
ADMIN_TOKEN_NEXT = "second-admin-token-7f3a9c2e41d8b6"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CRMAGENTO_ variable of the machine and no stray .env leak into these tests."""
    for key in list(os.environ):
        if key.startswith("CRMAGENTO_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _secret_values(settings: Settings) -> list[str]:
    return [s.get_secret_value() for s in settings.cr_webhook_secrets]


def test_defaults_without_any_variable() -> None:
    settings = load_settings()
    assert settings.redis_url is None
    assert settings.cr_webhook_secrets == [] and settings.admin_tokens == []
    assert (settings.host, settings.port, settings.webhook_tolerance_seconds) == ("127.0.0.1", 8080, 300)


def test_reads_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CRMAGENTO_PORT", "9091")
    monkeypatch.setenv("CRMAGENTO_HOST", "10.1.2.3")
    monkeypatch.setenv("CRMAGENTO_RECONCILE_INTERVAL_MINUTES", "15")  # unknown to this build: ignored, no error
    monkeypatch.setenv("CRMAGENTO_WEBHOOK_TOLERANCE_SECONDS", "120")
    monkeypatch.setenv("crmagento_log_level", "DEBUG")  # environment names are case-insensitive
    # Unprefixed look-alikes are not ours.
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:1/0")
    settings = load_settings()
    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == REDIS_URL
    assert (settings.port, settings.host, settings.webhook_tolerance_seconds) == (9091, "10.1.2.3", 120)
    assert settings.log_level == "DEBUG"


def test_unprefixed_variables_alone_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("ADMIN_TOKENS", ADMIN_TOKEN)
    settings = load_settings()
    assert settings.port == 8080 and settings.admin_tokens == []


def test_env_name_maps_fields_to_variables() -> None:
    assert env_name("cr_webhook_secrets") == "CRMAGENTO_CR_WEBHOOK_SECRETS"
    assert env_name("redis_url") == "CRMAGENTO_REDIS_URL"


def test_dotenv_in_the_working_directory(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "# comment line\n"
        f"CRMAGENTO_REDIS_URL={REDIS_URL}\n"
        f"CRMAGENTO_CR_WEBHOOK_SECRETS={CR_SECRET}, {CR_SECRET_NEXT}\n"
        f'CRMAGENTO_ADMIN_TOKENS="{ADMIN_TOKEN}"\n'
        "CRMAGENTO_PORT=7070\n"
        "UNRELATED=1\n",
        encoding="utf-8",
    )
    settings = load_settings()
    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == REDIS_URL
    assert _secret_values(settings) == [CR_SECRET, CR_SECRET_NEXT]
    assert [t.get_secret_value() for t in settings.admin_tokens] == [ADMIN_TOKEN]
    assert settings.port == 7070


def test_environment_wins_over_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("CRMAGENTO_PORT=7070\nCRMAGENTO_HOST=10.0.0.1\n")
    monkeypatch.setenv("CRMAGENTO_PORT", "7171")
    settings = load_settings()
    assert (settings.port, settings.host) == (7171, "10.0.0.1")


def test_explicit_env_file_and_opting_out(tmp_path: Path) -> None:
    other = tmp_path / "conf" / "gateway.env"
    other.parent.mkdir()
    other.write_text(f"CRMAGENTO_MAGENTO_WEBHOOK_SECRETS={MAGENTO_SECRET}\n")
    (tmp_path / ".env").write_text("CRMAGENTO_PORT=7070\n")
    settings = load_settings(_env_file=other)
    assert [s.get_secret_value() for s in settings.magento_webhook_secrets] == [MAGENTO_SECRET]
    assert settings.port == 8080  # the cwd .env was replaced, not merged
    assert load_settings(_env_file=None).port == 8080


def test_bad_value_in_dotenv_is_a_config_error_too(clean_env: Path) -> None:
    (clean_env / ".env").write_text("CRMAGENTO_REDIS_URL=http://:dotenv-secret-pw@host:6379\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "CRMAGENTO_REDIS_URL" in str(caught.value) and "dotenv-secret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "raw",
    [
        f" {CR_SECRET} ,{CR_SECRET_NEXT}  ",
        f"{CR_SECRET},{CR_SECRET_NEXT},",
        f"{CR_SECRET} , , {CR_SECRET_NEXT}",
        f"\t{CR_SECRET},\n{CR_SECRET_NEXT}\n",
    ],
    ids=["spaces", "trailing-comma", "empty-item", "tabs-newlines"],
)
def test_comma_separated_secret_lists(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CRMAGENTO_CR_WEBHOOK_SECRETS", raw)
    monkeypatch.setenv("CRMAGENTO_ADMIN_TOKENS", f"{ADMIN_TOKEN} , {ADMIN_TOKEN_NEXT}")
    settings = load_settings()
    assert _secret_values(settings) == [CR_SECRET, CR_SECRET_NEXT]
    assert [t.get_secret_value() for t in settings.admin_tokens] == [ADMIN_TOKEN, ADMIN_TOKEN_NEXT]


def test_empty_secret_list_is_an_empty_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_CR_WEBHOOK_SECRETS", " , ")
    monkeypatch.setenv("CRMAGENTO_ADMIN_TOKENS", "")
    settings = load_settings()
    assert settings.cr_webhook_secrets == [] and settings.admin_tokens == []


def test_secrets_never_appear_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CRMAGENTO_CR_WEBHOOK_SECRETS", f"{CR_SECRET},{CR_SECRET_NEXT}")
    monkeypatch.setenv("CRMAGENTO_MAGENTO_WEBHOOK_SECRETS", MAGENTO_SECRET)
    monkeypatch.setenv("CRMAGENTO_ADMIN_TOKENS", f"{ADMIN_TOKEN},{ADMIN_TOKEN_NEXT}")
    monkeypatch.setenv("CRMAGENTO_MAGENTO_TOKEN", "magento-integration-token-xyz")
    monkeypatch.setenv("CRMAGENTO_MAGENTO_CONSUMER_SECRET", "oauth-consumer-secret-xyz")
    monkeypatch.setenv("CRMAGENTO_MAGENTO_ACCESS_TOKEN_SECRET", "oauth-token-secret-xyz")
    monkeypatch.setenv("CRMAGENTO_CR_API_KEY", "cloud-retailer-api-key-xyz")
    settings = load_settings()
    assert settings.cr_api_key is not None and settings.cr_api_key.get_secret_value() == "cloud-retailer-api-key-xyz"
    hidden = [
        CR_SECRET,
        CR_SECRET_NEXT,
        MAGENTO_SECRET,
        ADMIN_TOKEN,
        ADMIN_TOKEN_NEXT,
        REDIS_PASSWORD,
        "magento-integration-token-xyz",
        "oauth-consumer-secret-xyz",
        "oauth-token-secret-xyz",
        "cloud-retailer-api-key-xyz",
    ]
    for text in (repr(settings), str(settings), settings.model_dump_json(), f"{settings}", f"{settings!r}"):
        assert "cr_webhook_secrets" in text or "**" in text  # really the settings, not an empty string
        for value in hidden:
            assert value not in text, f"{value!r} leaked"
            assert value.removeprefix("whsec_") not in text


def _config_error(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return str(caught.value)


SHORT_KEY_SECRET = "whsec_" + base64.b64encode(b"only-12bytes").decode()


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("CRMAGENTO_CR_WEBHOOK_SECRETS", "whsec_***not-base64-hunter2***", "base64"),
        ("CRMAGENTO_CR_WEBHOOK_SECRETS", f"{CR_SECRET},sk_live_hunter2hunter2", "whsec_"),
        ("CRMAGENTO_CR_WEBHOOK_SECRETS", SHORT_KEY_SECRET, "16 bytes"),
        ("CRMAGENTO_MAGENTO_WEBHOOK_SECRETS", "whsec_hunter2==hunter2", "base64"),
        ("CRMAGENTO_ADMIN_TOKENS", f"{ADMIN_TOKEN},hunter2short", "16 characters"),
        ("CRMAGENTO_ADMIN_TOKENS", f"{ADMIN_TOKEN},hunter2hunter2hunter2", "too easy to guess"),
        ("CRMAGENTO_ADMIN_TOKENS", "passwordpassword", "openssl rand"),
        ("CRMAGENTO_TRUSTED_PROXIES", "10.0.0.0/8,hunter2.example", "CIDR"),
        ("CRMAGENTO_REDIS_URL", "http://:hunter2pass@redis.internal:6379/0", "redis://"),
        ("CRMAGENTO_REDIS_URL", "hunter2-no-scheme-at-all", "redis://"),
        ("CRMAGENTO_PORT", "eighty-hunter2", "integer"),
        ("CRMAGENTO_PORT", "99999", "65535"),
        ("CRMAGENTO_WEBHOOK_TOLERANCE_SECONDS", "1.5e", "integer"),
    ],
    ids=[
        "secret-not-base64",
        "secret-no-prefix",
        "secret-short-key",
        "magento-secret-bad",
        "admin-token-short",
        "admin-token-guessable",
        "admin-token-dictionary",
        "trusted-proxy-not-an-address",
        "redis-http",
        "redis-no-scheme",
        "port-not-int",
        "port-out-of-range",
        "tolerance-not-int",
    ],
)
def test_malformed_value_names_the_variable_not_the_value(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, needle: str
) -> None:
    message = _config_error(monkeypatch, variable, value)
    assert message.startswith(f"{variable}: "), message
    assert needle in message
    assert value not in message
    assert "hunter2" not in message
    assert value.split(",")[-1] not in message
    assert "input_value" not in message and "Traceback" not in message


def test_one_line_per_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_CR_WEBHOOK_SECRETS", "whsec_hunter2!")
    monkeypatch.setenv("CRMAGENTO_ADMIN_TOKENS", "hunter2")
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", "http://hunter2@x")
    monkeypatch.setenv("CRMAGENTO_PORT", "hunter2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    named = sorted(line.split(":", 1)[0] for line in lines)
    assert named == sorted(
        ["CRMAGENTO_CR_WEBHOOK_SECRETS", "CRMAGENTO_ADMIN_TOKENS", "CRMAGENTO_REDIS_URL", "CRMAGENTO_PORT"]
    )
    assert "hunter2" not in str(caught.value)


def test_overrides_are_validated_like_the_environment() -> None:
    with pytest.raises(ConfigError, match=r"^CRMAGENTO_PORT: "):
        load_settings(port="not-a-port")
    assert load_settings(port=9000, host="::1").port == 9000


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "redis://:pw@redis.internal:6380/2",
        "rediss://user:pw@redis.example.com:6380/0",
        "unix:///var/run/redis/redis.sock",
        "unix:///tmp/redis.sock?db=3",
    ],
)
def test_accepted_redis_schemes(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", url)
    settings = load_settings()
    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == url


def test_blank_redis_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", "  ")
    assert load_settings().redis_url is None


def test_require_names_every_missing_variable() -> None:
    settings = load_settings()
    with pytest.raises(ConfigError) as caught:
        settings.require("redis_url", "cr_webhook_secrets", "magento_webhook_secrets", "admin_tokens")
    message = str(caught.value)
    for name in (
        "CRMAGENTO_REDIS_URL",
        "CRMAGENTO_CR_WEBHOOK_SECRETS",
        "CRMAGENTO_MAGENTO_WEBHOOK_SECRETS",
        "CRMAGENTO_ADMIN_TOKENS",
    ):
        assert name in message
    assert "not set" in message


def test_require_names_only_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CRMAGENTO_CR_WEBHOOK_SECRETS", CR_SECRET)
    settings = load_settings()
    with pytest.raises(ConfigError) as caught:
        settings.require("redis_url", "cr_webhook_secrets", "admin_tokens")
    message = str(caught.value)
    assert "CRMAGENTO_ADMIN_TOKENS" in message
    assert "CRMAGENTO_REDIS_URL" not in message and "CRMAGENTO_CR_WEBHOOK_SECRETS" not in message
    assert REDIS_PASSWORD not in message


def test_require_passes_when_everything_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CRMAGENTO_CR_WEBHOOK_SECRETS", CR_SECRET)
    monkeypatch.setenv("CRMAGENTO_MAGENTO_WEBHOOK_SECRETS", MAGENTO_SECRET)
    monkeypatch.setenv("CRMAGENTO_ADMIN_TOKENS", ADMIN_TOKEN)
    load_settings().require("redis_url", "cr_webhook_secrets", "magento_webhook_secrets", "admin_tokens")


# --- Redis Sentinel -------------------------------------------------------------------------------------------


def test_sentinels_with_a_master_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINELS", " 10.0.0.5:26379, sentinel-b.internal:26380 ,[::1]:26381")
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINEL_MASTER", "crm")
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINEL_PASSWORD", "sentinel-pw-hunter2")
    settings = load_settings()
    assert settings.sentinel_addresses == [("10.0.0.5", 26379), ("sentinel-b.internal", 26380), ("::1", 26381)]
    assert settings.redis_sentinel_master == "crm" and settings.redis_url is None
    assert settings.redis_configured
    settings.require("redis_url")  # serve and worker need a Redis: the Sentinels are one
    assert "sentinel-pw-hunter2" not in repr(settings)


def test_sentinels_with_a_url_for_password_database_and_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINELS", "10.0.0.5:26379")
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINEL_MASTER", "crm")
    for url in ("redis://:pw@/3", "rediss://user:pw@/0", "redis:///2"):
        monkeypatch.setenv("CRMAGENTO_REDIS_URL", url)
        assert load_settings().redis_url is not None


def test_no_redis_at_all_names_both_ways() -> None:
    with pytest.raises(ConfigError, match=r"CRMAGENTO_REDIS_URL \(or CRMAGENTO_REDIS_SENTINELS\)"):
        load_settings().require("redis_url")


@pytest.mark.parametrize(
    ("variables", "names", "needle"),
    [
        ({"CRMAGENTO_REDIS_SENTINELS": "10.0.0.5:26379"}, ["CRMAGENTO_REDIS_SENTINEL_MASTER"], "required with"),
        ({"CRMAGENTO_REDIS_SENTINEL_MASTER": "crm"}, ["CRMAGENTO_REDIS_SENTINEL_MASTER"], "without"),
        ({"CRMAGENTO_REDIS_SENTINEL_PASSWORD": "hunter2-pw"}, ["CRMAGENTO_REDIS_SENTINEL_PASSWORD"], "without"),
        ({"CRMAGENTO_REDIS_SENTINELS": "hunter2-host"}, ["CRMAGENTO_REDIS_SENTINELS"], "host:port"),
        ({"CRMAGENTO_REDIS_SENTINELS": "a:1,hunter2:port"}, ["CRMAGENTO_REDIS_SENTINELS"], "host:port"),
        ({"CRMAGENTO_REDIS_SENTINELS": "hunter2:70000"}, ["CRMAGENTO_REDIS_SENTINELS"], "host:port"),
        (
            {
                "CRMAGENTO_REDIS_SENTINELS": "10.0.0.5:26379",
                "CRMAGENTO_REDIS_SENTINEL_MASTER": "crm",
                "CRMAGENTO_REDIS_URL": "redis://:hunter2@old-master.internal:6379/0",
            },
            ["CRMAGENTO_REDIS_URL", "CRMAGENTO_REDIS_SENTINELS"],
            "without a host",
        ),
        (
            {
                "CRMAGENTO_REDIS_SENTINELS": "10.0.0.5:26379",
                "CRMAGENTO_REDIS_SENTINEL_MASTER": "crm",
                "CRMAGENTO_REDIS_URL": "unix:///run/hunter2.sock",
            },
            ["CRMAGENTO_REDIS_URL"],
            "without a host",
        ),
    ],
    ids=[
        "no-master",
        "master-alone",
        "password-alone",
        "no-port",
        "port-not-int",
        "port-out-of-range",
        "url-with-host",
        "url-unix",
    ],
)
def test_sentinel_settings_that_do_not_fit(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], names: list[str], needle: str
) -> None:
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{names[0]}: "), message
    assert all(name in message for name in names) and needle in message
    assert "hunter2" not in message and "Traceback" not in message and len(message.splitlines()) == 1


def test_blank_sentinel_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINELS", " ")
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINEL_MASTER", "")
    monkeypatch.setenv("CRMAGENTO_REDIS_SENTINEL_PASSWORD", "")
    settings = load_settings()
    assert settings.redis_sentinels == [] and not settings.redis_configured


def test_an_event_record_lives_for_the_longer_window() -> None:
    # The record is the dedupe marker too: neither window may end before its TTL.
    longer_dedupe = Settings(_env_file=None, dedupe_ttl_seconds=9000, event_log_ttl_seconds=3600)  # type: ignore[call-arg]
    longer_log = Settings(_env_file=None, dedupe_ttl_seconds=3600, event_log_ttl_seconds=9000)  # type: ignore[call-arg]
    assert longer_dedupe.event_record_ttl_seconds == longer_log.event_record_ttl_seconds == 9000


def test_price_level_groups_map_levels_to_customer_group_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().price_level_groups == {}
    monkeypatch.setenv("CRMAGENTO_PRICE_LEVEL_GROUPS", "")
    assert load_settings().price_level_groups == {}
    monkeypatch.setenv("CRMAGENTO_PRICE_LEVEL_GROUPS", " A:2, b:3 ,C:4")
    assert load_settings().price_level_groups == {"A": 2, "B": 3, "C": 4}
    assert load_settings(price_level_groups="A:5").price_level_groups == {"A": 5}


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("D:2", "A, B, C"),
        ("A2", "LEVEL:GROUP_ID"),
        ("A:two", "integer"),
        ("A:-1", ">= 0"),
        ("A:2,a:3", "mapped twice"),
        ("A:2,B:2", "two price levels"),
    ],
    ids=["unknown-level", "no-colon", "group-not-int", "group-negative", "level-twice", "group-twice"],
)
def test_bad_price_level_groups_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, value: str, needle: str) -> None:
    message = _config_error(monkeypatch, "CRMAGENTO_PRICE_LEVEL_GROUPS", value)
    assert message.startswith("CRMAGENTO_PRICE_LEVEL_GROUPS: "), message
    assert needle in message


def test_stock_links_default_to_the_single_link_and_the_first_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_CR_STORE_ID", "W-1")
    single = load_settings()
    assert single.stock_links == [] and single.links == [StockLink("W-1", "default")]
    monkeypatch.delenv("CRMAGENTO_CR_STORE_ID")
    monkeypatch.setenv("CRMAGENTO_STOCK_LINKS", " S-1:main_street , W-1:default")
    several = load_settings()
    assert several.links == [StockLink("S-1", "main_street"), StockLink("W-1", "default")]
    assert several.default_link == StockLink("S-1", "main_street")
    assert (several.cr_store_id, several.magento_source_code) == ("S-1", "main_street")


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("W-1", "LOCATION_ID:SOURCE_CODE"),
        ("W-1:", "LOCATION_ID:SOURCE_CODE"),
        (":default", "LOCATION_ID:SOURCE_CODE"),
        ("W-1:default,S-1:default", "source 'default' is linked twice"),
        ("W-1:default,W-1:main_street", "location 'W-1' is linked twice"),
    ],
)
def test_bad_stock_links_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, value: str, needle: str) -> None:
    message = _config_error(monkeypatch, "CRMAGENTO_STOCK_LINKS", value)
    assert message.startswith("CRMAGENTO_STOCK_LINKS: "), message
    assert needle in message


def test_a_store_id_other_than_the_first_links_location_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMAGENTO_CR_STORE_ID", "S-1")
    monkeypatch.setenv("CRMAGENTO_STOCK_LINKS", "W-1:default,S-1:main_street")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "CRMAGENTO_CR_STORE_ID must be the location of the first entry of CRMAGENTO_STOCK_LINKS" in str(caught.value)

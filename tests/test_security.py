"""Token verification, the JWKS cache and dev mode, against a loopback identity provider (SPEC section 4)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwks_server import JwksServer, SigningKey

from sentinel.api.auth import PrincipalResolver
from sentinel.config import Settings, SettingsError
from sentinel.security import (
    AuthError,
    DevAuthority,
    JwksCache,
    JwksError,
    Principal,
    TokenVerifier,
    build_verifier,
    require_role,
)
from sentinel.security.jwks import parse_jwks
from sentinel.security.tokens import NUMERIC_DATE_MAX

T = TypeVar("T")

AUDIENCE = "sentinel"


class FakeClock:
    """Monotonic time the test moves by hand, so rate limits are checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The cache honours proxy variables (production may need them); loopback tests must not.
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.rsa(kid="rsa-1")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.ec(kid="ec-1")


@pytest.fixture
def idp(rsa_key: SigningKey, ec_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer([rsa_key, ec_key]) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_verifier(idp: JwksServer, clock: FakeClock | None = None, **options: Any) -> TokenVerifier:
    cache = JwksCache(jwks_uri=idp.jwks_uri, clock=clock or FakeClock(), **options)
    return TokenVerifier(idp.issuer, AUDIENCE, cache, "tenant_id")


def run(coro: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


def verify(verifier: TokenVerifier, token: str) -> Principal:
    return run(verifier.verify(f"Bearer {token}"))


def rejection(verifier: TokenVerifier, authorization: str | None) -> AuthError:
    with pytest.raises(AuthError) as caught:
        run(verifier.verify(authorization))
    return caught.value


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


# -- valid tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
def test_valid_token_yields_principal(idp: JwksServer, key_name: str, request: pytest.FixtureRequest) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    verifier = make_verifier(idp)
    token = key.sign(idp.claims(tenant_id="acme", roles=["reader"], sub="alice"))

    principal = verify(verifier, token)

    assert principal == Principal(subject="alice", tenant="acme", roles=frozenset({"reader"}))
    assert jwt.get_unverified_header(token)["alg"] == key.alg
    assert idp.jwks_requests == 1


def test_scheme_is_case_insensitive_and_audience_may_be_a_list(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    token = rsa_key.sign(idp.claims(tenant_id="acme", audience=["other", AUDIENCE]))

    for scheme in ("bearer", "BEARER", "Bearer"):
        assert run(verifier.verify(f"{scheme} {token}")).tenant == "acme"


def test_principal_without_subject(idp: JwksServer, ec_key: SigningKey) -> None:
    token = ec_key.sign(idp.claims(tenant_id="acme", sub=None))

    assert verify(make_verifier(idp), token).subject is None


# -- time claims ---------------------------------------------------------------------------------


def test_expired_beyond_leeway_is_refused(idp: JwksServer, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(idp.claims(tenant_id="acme", iat=int(time.time()) - 600, exp=int(time.time()) - 120))

    error = rejection(make_verifier(idp), f"Bearer {token}")

    assert (error.status, error.code) == (401, "expired")


def test_expired_within_leeway_is_accepted(idp: JwksServer, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(idp.claims(tenant_id="acme", iat=int(time.time()) - 600, exp=int(time.time()) - 10))

    assert verify(make_verifier(idp), token).tenant == "acme"


def test_not_before_is_honoured_with_leeway(idp: JwksServer, ec_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    now = int(time.time())

    soon = ec_key.sign(idp.claims(tenant_id="acme", nbf=now + 10))
    later = ec_key.sign(idp.claims(tenant_id="acme", nbf=now + 120))
    issued_in_future = ec_key.sign(idp.claims(tenant_id="acme", iat=now + 120))

    assert verify(verifier, soon).tenant == "acme"
    assert rejection(verifier, f"Bearer {later}").code == "not_yet_valid"
    assert rejection(verifier, f"Bearer {issued_in_future}").code == "not_yet_valid"


def test_token_without_exp_is_refused(idp: JwksServer, rsa_key: SigningKey) -> None:
    token = rsa_key.sign(idp.claims(tenant_id="acme", exp=None))

    error = rejection(make_verifier(idp), f"Bearer {token}")

    assert (error.status, error.code) == (401, "invalid_token")
    assert "'exp'" in error.detail


# -- time claims must be NumericDates (RFC 7519 section 2) ----------------------------------------

# JSON texts that are not a NumericDate Sentinel accepts, by kind. Each replaces one time claim of an
# otherwise valid token, so the refusal can only come from that claim.
NOT_NUMERIC_DATES = {
    "string": '"{future}"',
    "string-of-the-past": '"1767225600"',
    "empty-string": '""',
    "true": "true",
    "false": "false",
    "null": "null",
    "array": "[{future}]",
    "object": '{{"seconds": {future}}}',
    "int-10**400": "1" + "0" * 400,
    "int-minus-10**400": "-1" + "0" * 400,
    "int-4000-digits": "9" * 4000,
    "int-5000-digits": "9" * 5000,  # past Python's int-from-text limit: the JSON itself is refused
    "float-1e400": "1e400",
    "float-minus-1e400": "-1e400",
    "float-1e300": "1e300",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "minus-Infinity": "-Infinity",
    "negative": "-1",
    "negative-fraction": "-0.5",
    "after-9999": str(NUMERIC_DATE_MAX + 1),
}


STATIC_ISSUER = "http://127.0.0.1:1/realms/static"


def static_verifier(*keys: SigningKey, clock: Callable[[], float] = time.time) -> TokenVerifier:
    """A verifier whose keys are given (no fetch), for the issuer a ``JwksServer`` would have."""
    cache = JwksCache(static_jwks={"keys": [key.public_jwk() for key in keys]})
    return TokenVerifier(STATIC_ISSUER, AUDIENCE, cache, "tenant_id", clock=clock)


def static_claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": STATIC_ISSUER, "aud": AUDIENCE, "sub": "u", "iat": now, "exp": now + 300}
    claims.update(extra)
    return {name: value for name, value in claims.items() if value is not None}


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("kind", sorted(NOT_NUMERIC_DATES))
def test_time_claims_that_are_not_numeric_dates_are_401(rsa_key: SigningKey, claim: str, kind: str) -> None:
    future = int(time.time()) + 300
    text = json.dumps({**static_claims(tenant_id="acme"), claim: "@@RAW@@"})
    token = rsa_key.sign_raw(text.replace('"@@RAW@@"', NOT_NUMERIC_DATES[kind].format(future=future)))

    error = rejection(static_verifier(rsa_key), f"Bearer {token}")

    assert (error.status, error.code) == (401, "invalid_token"), error
    assert error.www_authenticate is not None
    assert error.www_authenticate.startswith('Bearer error="invalid_token"')
    if kind != "int-5000-digits":  # that one is not JSON Python can read: "malformed"
        assert f"'{claim}'" in error.detail, error


@pytest.mark.parametrize(
    ("claims", "expires_at"),
    [
        ({"exp": 4_000_000_000.5}, 4_000_000_000.5),  # a fraction is allowed by RFC 7519
        ({"exp": NUMERIC_DATE_MAX}, float(NUMERIC_DATE_MAX)),
        ({"exp": 4_000_000_000, "nbf": 0, "iat": 0}, 4e9),
        ({"exp": 4_000_000_000, "nbf": 1.5, "iat": 2.25}, 4e9),
    ],
)
def test_numeric_dates_in_range_are_accepted(rsa_key: SigningKey, claims: dict[str, Any], expires_at: float) -> None:
    token = rsa_key.sign(static_claims(tenant_id="acme", **claims))

    principal = verify(static_verifier(rsa_key), token)

    assert principal.tenant == "acme"
    assert principal.expires_at == expires_at
    assert type(principal.expires_at) is float


def test_time_claims_are_compared_with_leeway_on_the_verifiers_clock(rsa_key: SigningKey) -> None:
    wall = FakeClock()
    wall.now = 2_000_000_000.0
    verifier = static_verifier(rsa_key, clock=wall)
    leeway = verifier.leeway

    expiring = rsa_key.sign(static_claims(tenant_id="acme", iat=wall.now, exp=wall.now + 10))
    future_nbf = rsa_key.sign(static_claims(tenant_id="acme", iat=wall.now, nbf=wall.now + leeway + 1, exp=3e9))
    future_iat = rsa_key.sign(static_claims(tenant_id="acme", iat=wall.now + leeway + 1, exp=3e9))

    assert verify(verifier, expiring).expires_at == wall.now + 10
    assert rejection(verifier, f"Bearer {future_nbf}").code == "not_yet_valid"
    assert rejection(verifier, f"Bearer {future_iat}").code == "not_yet_valid"
    wall.advance(1)
    assert verify(verifier, future_nbf).tenant == "acme"
    assert verify(verifier, future_iat).tenant == "acme"
    wall.advance(10 + leeway - 1 - 0.001)
    assert verify(verifier, expiring).tenant == "acme"
    wall.advance(0.001)  # exactly exp + leeway
    assert rejection(verifier, f"Bearer {expiring}").code == "expired"


def test_the_verified_token_cache_ends_at_exp_plus_leeway(rsa_key: SigningKey) -> None:
    """The cache keeps a token no longer than the token itself is valid, from the same normalised exp."""
    wall = FakeClock()
    wall.now = 2_000_000_000.0
    verifier = static_verifier(rsa_key, clock=wall)
    resolver = PrincipalResolver(verifier)
    exp = wall.now + 5.5
    token = f"Bearer {rsa_key.sign(static_claims(tenant_id='acme', iat=wall.now, exp=exp))}"
    string_exp = f"Bearer {rsa_key.sign(static_claims(tenant_id='acme', exp=str(int(exp))))}"

    assert run(resolver(token)).expires_at == exp
    wall.now = exp + verifier.leeway - 0.001  # a cache hit, still valid
    assert run(resolver(token)).tenant == "acme"
    wall.now = exp + verifier.leeway
    with pytest.raises(AuthError) as caught:
        run(resolver(token))
    assert caught.value.code == "expired"
    # A string exp is refused on first sight, so it never reaches the cache either.
    wall.now = exp - 5
    for _ in range(2):
        with pytest.raises(AuthError) as caught:
            run(resolver(string_exp))
        assert (caught.value.status, caught.value.code) == (401, "invalid_token")


def test_an_unexpected_failure_while_checking_a_token_is_a_logged_401(
    rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    """The last line of defence: a defect in the checking itself (here the clock fails) still answers 401,
    and is logged as the defect it is, with its traceback."""

    def broken_clock() -> float:
        raise RuntimeError("clock unavailable")

    token = rsa_key.sign(static_claims(tenant_id="acme"))
    with caplog.at_level(logging.ERROR, logger="sentinel.security"):
        error = rejection(static_verifier(rsa_key, clock=broken_clock), f"Bearer {token}")

    assert (error.status, error.code) == (401, "invalid_token")
    assert error.detail == "token could not be verified"
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None
    assert "clock unavailable" in str(record.exc_info[1])


# -- whatever a token holds: a principal or an AuthError, never another exception ------------------


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE_HEADERS = {
    "alg-list": '{{"alg": ["RS256"], "kid": "{kid}"}}',
    "alg-object": '{{"alg": {{"name": "RS256"}}, "kid": "{kid}"}}',
    "alg-number": '{{"alg": 256, "kid": "{kid}"}}',
    "alg-null": '{{"alg": null, "kid": "{kid}"}}',
    "kid-object": '{{"alg": "RS256", "kid": {{"id": "{kid}"}}}}',
    "kid-list": '{{"alg": "RS256", "kid": ["{kid}"]}}',
    "kid-huge-number": '{{"alg": "RS256", "kid": 1e400}}',
    "crit-unknown": '{{"alg": "RS256", "kid": "{kid}", "crit": ["exp"]}}',
    "crit-not-a-list": '{{"alg": "RS256", "kid": "{kid}", "crit": "b64"}}',
    "crit-empty": '{{"alg": "RS256", "kid": "{kid}", "crit": []}}',
    "b64-false": '{{"alg": "RS256", "kid": "{kid}", "b64": false, "crit": ["b64"]}}',
    "nested-too-deep": '{{"alg": "RS256", "kid": "{kid}", "x": ' + _deep(2000) + "}}",
    "array": '["RS256", "{kid}"]',
    "string": '"RS256"',
    "null": "null",
    "empty": "",
    "not-json": "alg=RS256",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_HEADERS))
def test_hostile_headers_are_401(rsa_key: SigningKey, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    header = HOSTILE_HEADERS[kind].format(kid=rsa_key.kid)
    token = rsa_key.sign_raw(json.dumps(static_claims(tenant_id="acme")), header=header)

    error = rejection(static_verifier(rsa_key), f"Bearer {token}")

    assert error.status == 401, error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


HOSTILE_PAYLOADS = {
    "array": "[1, 2]",
    "string": '"claims"',
    "null": "null",
    "number": "1e400",
    "empty": "",
    "nested-too-deep": _deep(2000),
    "object-nested-too-deep": '{"tenant_id": "acme", "x": ' + _deep(2000) + "}",
    "duplicate-members": '{"exp": 1, "exp": "x"}',
    "truncated": '{"exp": 1',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_PAYLOADS))
def test_hostile_payloads_are_401(rsa_key: SigningKey, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    token = rsa_key.sign_raw(HOSTILE_PAYLOADS[kind])

    error = rejection(static_verifier(rsa_key), f"Bearer {token}")

    assert (error.status, error.code) == (401, "invalid_token"), error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


@pytest.mark.parametrize(
    "token",
    [
        "!!!.@@@.###",
        "a.b.c",
        "....",
        "..",
        "eyJhbGciOiJSUzI1NiJ9..",
        b64url(b"\xff\xfe\x00") + ".e30.sig",  # a header that is not UTF-8
        b64url(b'{"alg":"RS256","kid":"k"}') + "=====.e30.sig",  # padding past what base64 allows
        "eyJhbGciOiJSUzI1NiJ9.\u00e9.sig",  # non-ASCII (a latin-1 header byte)
        "eyJhbGciOiJSUzI1NiJ9.e30." + "A" * 8000,
    ],
)
def test_garbage_tokens_are_401(rsa_key: SigningKey, token: str, caplog: pytest.LogCaptureFixture) -> None:
    error = rejection(static_verifier(rsa_key), f"Bearer {token}")

    assert error.status == 401, error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**450), max_value=10**450)
    | st.floats()
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
_CLAIM_NAMES = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti", "tenant_id", "roles", "realm_access"]
_HEADER_NAMES = ["alg", "kid", "typ", "cty", "crit", "b64", "x5c", "zip", "jku", "x5u", "jwk"]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=300, deadline=None)
@given(
    claims=st.dictionaries(st.sampled_from(_CLAIM_NAMES), _json_values, max_size=5),
    header=st.dictionaries(st.sampled_from(_HEADER_NAMES), _json_values, max_size=3),
)
def test_any_token_gives_a_principal_or_a_deliberate_refusal(
    rsa_key: SigningKey, claims: dict[str, Any], header: dict[str, Any]
) -> None:
    """Signed tokens whose claims and header members hold any JSON at all: verification ends in a
    principal, a 401 or a 403, and never in the logged fallback for an unexpected error."""
    base_header = {"alg": rsa_key.alg, "kid": rsa_key.kid}
    token = rsa_key.sign_raw(
        json.dumps({**static_claims(tenant_id="acme"), **claims}), header=json.dumps({**base_header, **header})
    )
    errors = _Errors()
    logger = logging.getLogger("sentinel.security")
    logger.addHandler(errors)
    try:
        outcome: Principal | AuthError = verify(static_verifier(rsa_key), token)
    except AuthError as refused:
        outcome = refused
    finally:
        logger.removeHandler(errors)
    assert not errors.records, [record.getMessage() for record in errors.records]
    if isinstance(outcome, AuthError):
        assert outcome.status in (401, 403), outcome
    else:
        assert outcome.tenant == claims.get("tenant_id", "acme")
        assert outcome.expires_at is not None
        assert 0 <= outcome.expires_at <= NUMERIC_DATE_MAX


# -- issuer and audience -------------------------------------------------------------------------


def test_issuer_must_match_exactly(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)

    foreign = rejection(verifier, f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme', iss='https://evil.example'))}")
    trailing_slash = rejection(verifier, f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme', iss=idp.issuer + '/'))}")
    missing = rejection(verifier, f"Bearer {rsa_key.sign(_without(idp, 'iss'))}")

    assert (foreign.status, foreign.code) == (401, "invalid_issuer")
    assert (trailing_slash.status, trailing_slash.code) == (401, "invalid_issuer")
    assert (missing.status, missing.code) == (401, "invalid_token")
    assert "'iss'" in missing.detail


def _without(idp: JwksServer, claim: str) -> dict[str, Any]:
    claims = idp.claims(tenant_id="acme")
    del claims[claim]
    return claims


def test_audience_missing_or_other_is_refused(idp: JwksServer, ec_key: SigningKey) -> None:
    verifier = make_verifier(idp)

    missing = rejection(verifier, f"Bearer {ec_key.sign(_without(idp, 'aud'))}")
    other = rejection(verifier, f"Bearer {ec_key.sign(idp.claims(tenant_id='acme', audience='billing'))}")
    others = rejection(verifier, f"Bearer {ec_key.sign(idp.claims(tenant_id='acme', audience=['a', 'b']))}")

    assert (missing.status, missing.code) == (401, "invalid_token")
    assert "'aud'" in missing.detail
    assert (other.status, other.code) == (401, "invalid_audience")
    assert (others.status, others.code) == (401, "invalid_audience")


# -- algorithm attacks ---------------------------------------------------------------------------


def test_alg_none_is_refused_before_any_key_lookup(idp: JwksServer, rsa_key: SigningKey) -> None:
    token = forge({"alg": "none", "kid": rsa_key.kid}, idp.claims(tenant_id="acme"), lambda _: b"")

    error = rejection(make_verifier(idp), f"Bearer {token}")

    assert (error.status, error.code) == (401, "unsupported_alg")
    assert idp.total_requests == 0


def test_hs256_signed_with_the_rsa_public_key_is_refused(idp: JwksServer, rsa_key: SigningKey) -> None:
    # The classic confusion attack: the public key, which anyone can fetch, used as an HMAC secret.
    secret = rsa_key.public_pem()
    token = forge(
        {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid},
        idp.claims(tenant_id="acme"),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    verifier = make_verifier(idp)

    error = rejection(verifier, f"Bearer {token}")

    assert (error.status, error.code) == (401, "unsupported_alg")
    assert idp.total_requests == 0


def test_algorithm_is_pinned_to_the_key_type(idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    # An ES256 header naming the RSA key's kid finds no ES256 key under that kid.
    crossed = forge(
        {"alg": "ES256", "kid": rsa_key.kid},
        idp.claims(tenant_id="acme"),
        lambda data: b"\x00" * 64,
    )
    # A token whose header says RS256 but is signed by someone else's key does not verify.
    stranger = SigningKey.rsa(kid=rsa_key.kid)

    assert rejection(verifier, f"Bearer {crossed}").code == "unknown_key"
    assert rejection(verifier, f"Bearer {stranger.sign(idp.claims(tenant_id='acme'))}").code == "invalid_signature"
    assert verify(verifier, ec_key.sign(idp.claims(tenant_id="acme"))).tenant == "acme"


def test_tampered_payload_fails_signature(idp: JwksServer, ec_key: SigningKey) -> None:
    header, _, signature = ec_key.sign(idp.claims(tenant_id="acme")).split(".")
    forged_claims = b64url(json.dumps(idp.claims(tenant_id="other-tenant")).encode())

    error = rejection(make_verifier(idp), f"Bearer {header}.{forged_claims}.{signature}")

    assert (error.status, error.code) == (401, "invalid_signature")


# -- header parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "a" * 129, "kid\nnewline", ""])
def test_hostile_kid_is_refused_before_lookup(idp: JwksServer, rsa_key: SigningKey, kid: str) -> None:
    token = rsa_key.sign(idp.claims(tenant_id="acme"), kid=kid)

    error = rejection(make_verifier(idp), f"Bearer {token}")

    assert (error.status, error.code) == (401, "invalid_kid")
    assert idp.total_requests == 0


def test_missing_or_non_string_kid_is_refused(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)

    missing = rejection(verifier, f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme'), kid=None)}")
    assert isinstance(rsa_key.private_key, rsa.RSAPrivateKey)
    private_key = rsa_key.private_key
    numeric_kid = forge(
        {"alg": "RS256", "kid": 7},
        idp.claims(tenant_id="acme"),
        lambda data: private_key.sign(data, padding.PKCS1v15(), hashes.SHA256()),
    )
    numeric = rejection(verifier, f"Bearer {numeric_kid}")

    assert (missing.status, missing.code) == (401, "invalid_kid")
    assert (numeric.status, numeric.code) == (401, "invalid_token")
    assert idp.total_requests == 0


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk"])
def test_key_locating_headers_are_refused_and_never_followed(idp: JwksServer, rsa_key: SigningKey, name: str) -> None:
    attacker = SigningKey.rsa(kid=rsa_key.kid)
    value: Any = attacker.public_jwk() if name == "jwk" else f"{idp.base_url}/attacker-keys"
    token = attacker.sign(idp.claims(tenant_id="acme"), **{name: value})

    error = rejection(make_verifier(idp), f"Bearer {token}")

    assert (error.status, error.code) == (401, "forbidden_header")
    assert idp.total_requests == 0


def test_x5c_is_ignored_and_the_key_comes_from_the_jwks(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    good = rsa_key.sign(idp.claims(tenant_id="acme"), x5c=["bm90IGEgY2VydGlmaWNhdGU="])
    # A chain for an attacker key does not make the attacker's signature acceptable.
    attacker = SigningKey.rsa(kid=rsa_key.kid)
    bad = attacker.sign(idp.claims(tenant_id="acme"), x5c=["bm90IGEgY2VydGlmaWNhdGU="])

    assert verify(verifier, good).tenant == "acme"
    assert rejection(verifier, f"Bearer {bad}").code == "invalid_signature"


# -- the Authorization header itself -------------------------------------------------------------


def test_oversized_header_is_refused_without_parsing(
    idp: JwksServer, rsa_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_parse(token: str) -> dict[str, Any]:
        raise AssertionError("an oversized header was parsed")

    monkeypatch.setattr(jwt, "get_unverified_header", must_not_parse)
    verifier = make_verifier(idp)
    valid = rsa_key.sign(idp.claims(tenant_id="acme"))
    small = TokenVerifier(idp.issuer, AUDIENCE, verifier.jwks, max_token_bytes=len(valid))

    huge = rejection(verifier, "Bearer " + "a" * 9000)
    over_custom_limit = rejection(small, f"Bearer {valid}")

    assert (huge.status, huge.code) == (401, "token_too_large")
    assert over_custom_limit.code == "token_too_large"
    assert idp.total_requests == 0


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "missing_token"),
        ("", "missing_token"),
        ("   ", "missing_token"),
        ("Bearer", "invalid_request"),
        ("Bearer    ", "invalid_request"),
        ("Basic dXNlcjpwYXNz", "invalid_request"),
        ("Token a.b.c", "invalid_request"),
        ("Bearer not-a-jwt", "invalid_token"),
        ("Bearer a.b.c", "invalid_token"),
        ("Bearer a.b.c.d", "invalid_token"),
        ("Bearer é.é.é", "invalid_token"),
    ],
)
def test_malformed_authorization_is_401(idp: JwksServer, authorization: str | None, code: str) -> None:
    error = rejection(make_verifier(idp), authorization)

    assert (error.status, error.code) == (401, code)
    assert error.www_authenticate is not None
    assert error.www_authenticate.startswith("Bearer")
    assert idp.total_requests == 0


def test_www_authenticate_follows_rfc6750(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    expired = rsa_key.sign(idp.claims(tenant_id="acme", exp=int(time.time()) - 300))

    assert rejection(verifier, None).www_authenticate == "Bearer"
    assert rejection(verifier, "Basic x").www_authenticate == (
        'Bearer error="invalid_request", error_description="authorization header must be \'Bearer <token>\'"'
    )
    assert rejection(verifier, f"Bearer {expired}").www_authenticate == (
        'Bearer error="invalid_token", error_description="token has expired"'
    )
    assert AuthError(403, "missing_role", "no").www_authenticate is None


def test_error_details_never_echo_the_token(idp: JwksServer, rsa_key: SigningKey, ec_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    tokens = [
        rsa_key.sign(idp.claims(tenant_id="acme", exp=int(time.time()) - 300)),
        ec_key.sign(idp.claims(tenant_id="acme", iss="https://evil.example")),
        SigningKey.ec(kid=ec_key.kid).sign(idp.claims(tenant_id="acme")),
        rsa_key.sign(idp.claims(tenant_id="")),
        "not-a-jwt-but-secret-looking",
    ]
    for token in tokens:
        error = rejection(verifier, f"Bearer {token}")
        for text in (error.detail, str(error), repr(error), error.www_authenticate or ""):
            assert token not in text
            assert token[:20] not in text


# -- tenant and roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tenant",
    [None, "", "   ", " acme", 123, ["acme"], {"id": "acme"}, True, "x" * 51, "ac\x00me"],
)
def test_bad_tenant_claim_is_403(idp: JwksServer, ec_key: SigningKey, tenant: object) -> None:
    claims = idp.claims()
    if tenant is not None:
        claims["tenant_id"] = tenant

    error = rejection(make_verifier(idp), f"Bearer {ec_key.sign(claims)}")

    assert (error.status, error.code) == (403, "missing_tenant")
    assert error.www_authenticate is None
    assert "tenant_id" in error.detail


def test_tenant_claim_name_is_configurable_and_50_chars_fit(idp: JwksServer, ec_key: SigningKey) -> None:
    cache = JwksCache(jwks_uri=idp.jwks_uri)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache, tenant_claim="org")
    longest = "t" * 50

    assert verify(verifier, ec_key.sign(idp.claims(org=longest))).tenant == longest
    assert rejection(verifier, f"Bearer {ec_key.sign(idp.claims(tenant_id='acme'))}").code == "missing_tenant"


@pytest.mark.parametrize(
    ("extra", "roles"),
    [
        ({"roles": ["sentinel-ingest", "reader"]}, {"sentinel-ingest", "reader"}),
        (
            {"realm_access": {"roles": ["offline_access", "sentinel-ingest"]}},
            {"offline_access", "sentinel-ingest"},
        ),
        ({"roles": ["a", "b"], "realm_access": {"roles": ["b", "c"]}}, {"a", "b", "c"}),
        ({"roles": "sentinel-ingest", "realm_access": ["sentinel-ingest"]}, set()),
        ({"roles": ["ok", 5, None, "", {"x": 1}]}, {"ok"}),
        ({}, set()),
    ],
)
def test_roles_come_from_roles_and_realm_access(
    idp: JwksServer, rsa_key: SigningKey, extra: dict[str, Any], roles: set[str]
) -> None:
    principal = verify(make_verifier(idp), rsa_key.sign(idp.claims(tenant_id="acme", **extra)))

    assert principal.roles == frozenset(roles)


def test_require_role() -> None:
    principal = Principal(subject="alice", tenant="acme", roles=frozenset({"sentinel-ingest"}))

    require_role(principal, "sentinel-ingest")
    with pytest.raises(AuthError) as caught:
        require_role(principal, "admin")

    assert principal.has_role("sentinel-ingest")
    assert not principal.has_role("admin")
    assert (caught.value.status, caught.value.code) == (403, "missing_role")
    assert "admin" in caught.value.detail


# -- key cache: rotation, rate limits, outages ---------------------------------------------------


def test_concurrent_misses_share_one_fetch(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    header = f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme'))}"

    async def scenario() -> list[Principal]:
        return await asyncio.gather(*(verifier.verify(header) for _ in range(50)))

    principals = run(scenario())

    assert {p.tenant for p in principals} == {"acme"}
    assert idp.jwks_requests == 1


def test_key_rotation_overlap(clock: FakeClock) -> None:
    old, new = SigningKey.rsa(kid="old"), SigningKey.ec(kid="new")
    with JwksServer([old]) as idp:
        verifier = make_verifier(idp, clock)
        old_token = old.sign(idp.claims(tenant_id="acme"))
        new_token = new.sign(idp.claims(tenant_id="acme"))

        async def scenario() -> None:
            assert (await verifier.verify(f"Bearer {old_token}")).tenant == "acme"
            assert idp.jwks_requests == 1

            idp.set_keys([old, new])
            clock.advance(31)
            results = await asyncio.gather(*(verifier.verify(f"Bearer {new_token}") for _ in range(20)))
            assert {p.tenant for p in results} == {"acme"}
            assert idp.jwks_requests == 2  # the new kid was fetched exactly once
            assert (await verifier.verify(f"Bearer {old_token}")).tenant == "acme"
            assert verifier.jwks.kids == {"old", "new"}

            # Retiring the old key: once a fetch no longer lists it, its tokens stop verifying.
            idp.set_keys([new])
            assert await verifier.jwks.refresh()
            with pytest.raises(AuthError) as caught:
                await verifier.verify(f"Bearer {old_token}")
            assert caught.value.code == "unknown_key"
            assert (await verifier.verify(f"Bearer {new_token}")).tenant == "acme"

        run(scenario())
        assert idp.jwks_requests == 3


def test_flood_of_unknown_kids_costs_at_most_one_fetch(idp: JwksServer, clock: FakeClock, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp, clock)
    claims = idp.claims(tenant_id="acme")
    flood = [f"Bearer {SigningKey(rsa_key.private_key, kid=secrets.token_hex(8)).sign(claims)}" for _ in range(200)]

    async def attempt(header: str) -> str:
        try:
            await verifier.verify(header)
        except AuthError as error:
            return error.code
        return "accepted"

    async def scenario() -> None:
        assert await verifier.jwks.refresh()
        clock.advance(31)
        codes = await asyncio.gather(*(attempt(header) for header in flood))
        assert set(codes) == {"unknown_key"}
        assert idp.jwks_requests == 2

        # Sequential attempts within the interval fetch nothing at all.
        codes = [await attempt(header) for header in flood]
        assert set(codes) == {"unknown_key"}
        assert idp.jwks_requests == 2

        # After the interval one more unknown kid may look again, once.
        clock.advance(31)
        codes = [await attempt(header) for header in flood[:10]]
        assert set(codes) == {"unknown_key"}
        assert idp.jwks_requests == 3

    run(scenario())


@pytest.mark.parametrize("outage", ["503", "close", "hang"])
def test_provider_down_cached_keys_keep_working(
    idp: JwksServer, clock: FakeClock, rsa_key: SigningKey, outage: Any
) -> None:
    outcomes: list[bool] = []
    cache = JwksCache(jwks_uri=idp.jwks_uri, clock=clock, on_fetch=outcomes.append)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache)
    known = f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme'))}"
    unknown = f"Bearer {SigningKey.ec(kid='unseen').sign(idp.claims(tenant_id='acme'))}"

    async def scenario() -> None:
        assert (await verifier.verify(known)).tenant == "acme"
        idp.take_down(outage)
        clock.advance(31)

        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        with pytest.raises(AuthError) as caught:
            # Generous bound: the point is that it returns (fetch timeout 2 s), not how fast.
            await asyncio.wait_for(verifier.verify(unknown), timeout=15)
        stop.set()
        await ticking

        assert (caught.value.status, caught.value.code) == (401, "unknown_key")
        assert (await verifier.verify(known)).tenant == "acme"
        assert cache.ready()
        assert cache.last_error is not None
        if outage == "hang":
            # The loop kept running while the fetch waited on the network in its thread.
            assert ticks >= 10

    run(scenario())
    assert outcomes == [True, False]


def test_cold_start_with_provider_down_then_recovery(idp: JwksServer, clock: FakeClock, rsa_key: SigningKey) -> None:
    outcomes: list[bool] = []
    cache = JwksCache(jwks_uri=idp.jwks_uri, clock=clock, on_fetch=outcomes.append)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache)
    header = f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme'))}"
    idp.take_down("503")

    async def scenario() -> None:
        await cache.start()  # a failed first load must not raise
        try:
            assert not cache.ready()
            assert "HTTP 503" in (cache.last_error or "")
            with pytest.raises(AuthError) as caught:
                await verifier.verify(header)
            assert caught.value.code == "unknown_key"
            assert idp.jwks_requests == 1  # the start-up attempt counts against the interval

            idp.bring_up()
            clock.advance(31)
            assert (await verifier.verify(header)).tenant == "acme"
            assert cache.ready()
            assert cache.last_error is None
        finally:
            await cache.close()

    run(scenario())
    assert outcomes == [False, True]


def test_failed_refresh_keeps_old_keys(idp: JwksServer, rsa_key: SigningKey) -> None:
    verifier = make_verifier(idp)
    header = f"Bearer {rsa_key.sign(idp.claims(tenant_id='acme'))}"

    async def scenario() -> None:
        assert await verifier.jwks.refresh()
        # A JWKS with nothing usable is treated as a failed fetch, not as "revoke everything".
        idp.set_document({"keys": [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}]})
        assert not await verifier.jwks.refresh()
        assert (await verifier.verify(header)).tenant == "acme"
        idp.set_document({"not": "a jwks"})
        assert not await verifier.jwks.refresh()
        assert (await verifier.verify(header)).tenant == "acme"
        assert verifier.jwks.kids == {"rsa-1", "ec-1"}

    run(scenario())


def test_background_refresh_picks_up_new_keys(idp: JwksServer) -> None:
    newcomer = SigningKey.ec(kid="rotated-in")
    cache = JwksCache(jwks_uri=idp.jwks_uri, refresh_interval=0.05)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache)

    async def scenario() -> None:
        await verifier.start()
        try:
            assert cache.ready()
            idp.set_keys([*idp.keys, newcomer])
            deadline = time.monotonic() + 10
            while "rotated-in" not in cache.kids and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert "rotated-in" in cache.kids
            before = idp.jwks_requests
            principal = await verifier.verify(f"Bearer {newcomer.sign(idp.claims(tenant_id='acme'))}")
            assert principal.tenant == "acme"
            assert idp.jwks_requests - before <= 1  # at most a background tick, no on-demand fetch needed
        finally:
            await verifier.close()
        settled = idp.jwks_requests
        await asyncio.sleep(0.2)
        assert idp.jwks_requests == settled  # close() really stopped the refresher

    run(scenario())


def test_oidc_discovery(idp: JwksServer, ec_key: SigningKey) -> None:
    cache = JwksCache(issuer=idp.issuer)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache)
    header = f"Bearer {ec_key.sign(idp.claims(tenant_id='acme'))}"

    async def scenario() -> None:
        assert (await verifier.verify(header)).tenant == "acme"
        assert (idp.discovery_requests, idp.jwks_requests) == (1, 1)
        assert await cache.refresh()
        # The discovered jwks_uri is remembered; only the JWKS is fetched again.
        assert (idp.discovery_requests, idp.jwks_requests) == (1, 2)

    run(scenario())


def test_discovery_for_a_different_issuer_is_rejected(idp: JwksServer, ec_key: SigningKey) -> None:
    idp.discovery_issuer = "https://impostor.example/realms/sentinel"
    cache = JwksCache(issuer=idp.issuer)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache)

    error = rejection(verifier, f"Bearer {ec_key.sign(idp.claims(tenant_id='acme'))}")

    assert error.code == "unknown_key"
    assert "different issuer" in (cache.last_error or "")
    assert idp.jwks_requests == 0


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/keys.json", "data:,{}"])
def test_redirect_to_a_non_http_scheme_is_not_followed(idp: JwksServer, location: str) -> None:
    idp.redirect = location
    outcomes: list[bool] = []
    cache = JwksCache(jwks_uri=idp.jwks_uri, on_fetch=outcomes.append)

    assert run(cache.refresh()) is False
    assert not cache.ready()
    assert cache.last_error is not None
    assert outcomes == [False]


def test_redirect_to_http_is_followed(idp: JwksServer, rsa_key: SigningKey) -> None:
    with JwksServer([rsa_key]) as moved:
        idp.redirect = moved.jwks_uri
        cache = JwksCache(jwks_uri=idp.jwks_uri)

        assert run(cache.refresh()) is True
        assert cache.kids == {"rsa-1"}
        assert moved.jwks_requests == 1


def test_on_fetch_callback_errors_do_not_break_auth(
    idp: JwksServer, rsa_key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(ok: bool) -> None:
        raise RuntimeError("metrics backend exploded")

    cache = JwksCache(jwks_uri=idp.jwks_uri, on_fetch=broken)
    verifier = TokenVerifier(idp.issuer, AUDIENCE, cache)

    with caplog.at_level(logging.ERROR, logger="sentinel.security.jwks"):
        principal = verify(verifier, rsa_key.sign(idp.claims(tenant_id="acme")))

    assert principal.tenant == "acme"
    assert "on_fetch callback failed" in caplog.text


# -- JWKS parsing --------------------------------------------------------------------------------


def test_parse_jwks_keeps_only_usable_signing_keys(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    weak = SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=1024), kid="weak")  # noqa: S505 - weak on purpose
    p384 = ec.generate_private_key(ec.SECP384R1())
    p384_jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(p384.public_key(), as_dict=True), "kid": "p384"}
    assert isinstance(rsa_key.private_key, rsa.RSAPrivateKey)
    private_rsa = {
        **jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.private_key, as_dict=True),
        "kid": "with-private-parts",
    }
    document = {
        "keys": [
            rsa_key.public_jwk(),
            ec_key.public_jwk(use=None, alg=None),
            rsa_key.public_jwk(kid="encryption", use="enc"),
            rsa_key.public_jwk(kid="declared-ps256", alg="PS256"),
            rsa_key.public_jwk(kid="../etc/passwd"),
            rsa_key.public_jwk(kid=None),
            weak.public_jwk(),
            p384_jwk,
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            private_rsa,
            "not a key",
        ]
    }

    keys = parse_jwks(document)

    assert set(keys) == {("rsa-1", "RS256"), ("ec-1", "ES256"), ("with-private-parts", "RS256")}
    # Private members are dropped: the cache only ever holds public keys.
    assert isinstance(keys["with-private-parts", "RS256"].key, rsa.RSAPublicKey)
    assert isinstance(keys["ec-1", "ES256"].key, ec.EllipticCurvePublicKey)
    with pytest.raises(JwksError):
        parse_jwks({"keys": "nope"})
    with pytest.raises(JwksError):
        parse_jwks(["keys"])


def test_hs256_with_a_published_oct_key_is_refused(idp: JwksServer, rsa_key: SigningKey) -> None:
    secret = b"shared-secret-published-by-mistake"
    idp.set_keys([rsa_key], extra_jwks=[{"kty": "oct", "kid": "oct-1", "k": b64url(secret), "alg": "HS256"}])
    token = forge(
        {"alg": "HS256", "kid": "oct-1"},
        idp.claims(tenant_id="acme"),
        lambda data: hmac.new(secret, data, hashlib.sha256).digest(),
    )
    verifier = make_verifier(idp)

    assert verify(verifier, rsa_key.sign(idp.claims(tenant_id="acme"))).tenant == "acme"
    assert rejection(verifier, f"Bearer {token}").code == "unsupported_alg"
    assert verifier.jwks.kids == {"rsa-1"}


def test_cache_rejects_bad_construction() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        JwksCache()
    with pytest.raises(ValueError, match="exactly one"):
        JwksCache(jwks_uri="https://a.example/jwks", issuer="https://a.example")
    with pytest.raises(JwksError, match="http"):
        JwksCache(jwks_uri="file:///etc/passwd")
    with pytest.raises(JwksError, match="no usable"):
        JwksCache(static_jwks={"keys": []})


# -- dev mode ------------------------------------------------------------------------------------


def test_dev_authority_round_trip(tmp_path: Path) -> None:
    verifier = build_verifier(Settings(dev_mode=True, data_dir=tmp_path / "data"))
    authority = DevAuthority(tmp_path / "data")
    token = authority.mint("acme", roles=["sentinel-ingest", "reader"], subject="dev")

    principal = verify(verifier, token)

    assert principal == Principal(subject="dev", tenant="acme", roles=frozenset({"sentinel-ingest", "reader"}))
    assert verifier.ready()
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": authority.kid, "typ": "JWT"}
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"]) == ("sentinel-dev", "sentinel")
    assert claims["exp"] - claims["iat"] == 3600


def test_dev_key_is_persisted_private_and_stable(tmp_path: Path) -> None:
    first = DevAuthority(tmp_path)
    key_file = tmp_path / "dev-signing-key.pem"
    second = DevAuthority(tmp_path)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.kid == second.kid
    assert first.jwks() == second.jwks()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-signing-key.pem"]  # no temp files left
    verifier = TokenVerifier(second.issuer, second.audience, JwksCache(static_jwks=second.jwks()))
    assert verify(verifier, first.mint("acme")).roles == frozenset({"sentinel-ingest"})


def test_dev_kid_is_the_rfc7638_thumbprint(tmp_path: Path) -> None:
    authority = DevAuthority(tmp_path)
    pem = (tmp_path / "dev-signing-key.pem").read_bytes()
    private_key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)

    assert authority.kid == b64url(hashlib.sha256(canonical.encode()).digest())
    assert authority.jwks()["keys"][0]["kid"] == authority.kid


def test_dev_tokens_from_another_data_dir_are_unknown(tmp_path: Path) -> None:
    verifier = build_verifier(Settings(dev_mode=True, data_dir=tmp_path / "one"))
    stranger = DevAuthority(tmp_path / "two")

    error = rejection(verifier, f"Bearer {stranger.mint('acme')}")

    assert (error.status, error.code) == (401, "unknown_key")


def test_dev_authority_options_and_validation(tmp_path: Path) -> None:
    authority = DevAuthority(tmp_path, tenant_claim="org")
    verifier = build_verifier(Settings(dev_mode=True, data_dir=tmp_path, tenant_claim="org"))

    principal = verify(verifier, authority.mint("acme", roles="admin", ttl_seconds=60))

    assert principal.roles == frozenset({"admin"})
    with pytest.raises(ValueError, match="tenant"):
        authority.mint("")
    with pytest.raises(ValueError, match="ttl"):
        authority.mint("acme", ttl_seconds=0)


def test_dev_key_of_the_wrong_type_is_refused(tmp_path: Path) -> None:
    wrong = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "dev-signing-key.pem"
    key_file.write_bytes(
        wrong.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(key_file, 0o600)

    with pytest.raises(ValueError, match="P-256"):
        DevAuthority(tmp_path)


# -- build_verifier for a real provider ----------------------------------------------------------


def test_build_verifier_uses_the_jwk_set_uri(idp: JwksServer, rsa_key: SigningKey) -> None:
    settings = Settings(oauth2_issuer=idp.issuer, oauth2_audience=AUDIENCE, oauth2_jwk_set_uri=idp.jwks_uri)
    outcomes: list[bool] = []
    verifier = build_verifier(settings, on_fetch=outcomes.append)

    principal = verify(verifier, rsa_key.sign(idp.claims(tenant_id="acme")))

    assert principal.tenant == "acme"
    assert (idp.discovery_requests, idp.jwks_requests) == (0, 1)
    assert outcomes == [True]


def test_build_verifier_discovers_from_the_issuer(idp: JwksServer, ec_key: SigningKey) -> None:
    settings = Settings(oauth2_issuer=idp.issuer, oauth2_audience=AUDIENCE, tenant_claim="org")
    verifier = build_verifier(settings)

    principal = verify(verifier, ec_key.sign(idp.claims(org="acme")))

    assert principal.tenant == "acme"
    assert (idp.discovery_requests, idp.jwks_requests) == (1, 1)


def test_build_verifier_requires_an_identity_provider() -> None:
    with pytest.raises(SettingsError, match="OAUTH2_ISSUER"):
        build_verifier(Settings())
    with pytest.raises(SettingsError, match="OAUTH2_AUDIENCE"):
        build_verifier(Settings(oauth2_issuer="https://idp.example/realms/x"))

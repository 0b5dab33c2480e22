from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.errors import InvalidIdentity
from router.identity import mask, normalize, normalize_all, parse_key
from router.models import IdentityIn


def test_email_is_lowercased_and_trimmed() -> None:
    ident = normalize(IdentityIn(kind="Email", value="  Maria.Lopez@Example.COM "))
    assert ident.key == "email:maria.lopez@example.com"


@pytest.mark.parametrize("value", ["maria", "maria@", "@example.com", "a b@example.com", "a@b"])
def test_bad_emails_are_refused(value: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize(IdentityIn(kind="email", value=value))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "+34 612 34 56 78"),
        ("whatsapp", "34612345678"),
        ("sms", "whatsapp:+34612345678"),
        ("tel", "tel:+34-612-345-678"),
    ],
)
def test_phone_kinds_become_one_e164_identity(kind: str, value: str) -> None:
    assert normalize(IdentityIn(kind=kind, value=value)).key == "phone:+34612345678"


def test_national_numbers_need_a_region() -> None:
    with pytest.raises(InvalidIdentity):
        normalize(IdentityIn(kind="phone", value="612 34 56"))
    ident = normalize(IdentityIn(kind="phone", value="612 34 56 78"), default_region="ES")
    assert ident.value == "+34612345678"


@pytest.mark.parametrize("value", ["not a number", "+1", "+999999999999999999"])
def test_bad_phones_are_refused(value: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize(IdentityIn(kind="phone", value=value))


def test_provider_ids_keep_their_case_and_scope() -> None:
    assert normalize(IdentityIn(kind="Telegram", value=" 12345 ")).key == "telegram:12345"
    assert normalize(IdentityIn(kind="chat_visitor", value="V-991")).value == "V-991"


@pytest.mark.parametrize("kind", ["", "has space", "9lives", "x" * 70])
def test_bad_kinds_are_refused(kind: str) -> None:
    with pytest.raises(InvalidIdentity):
        normalize(IdentityIn(kind=kind or " ", value="v"))


def test_normalize_all_dedupes_and_prefers_verified() -> None:
    result = normalize_all(
        [
            IdentityIn(kind="email", value="A@x.io", verified=False),
            IdentityIn(kind="email", value="a@X.io", verified=True),
            IdentityIn(kind="sms", value="+34612345678", verified=True),
            IdentityIn(kind="whatsapp", value="+34 612 345 678", verified=False),
        ]
    )
    assert [(i.key, i.verified) for i in result] == [
        ("email:a@x.io", True),
        ("phone:+34612345678", True),
    ]


def test_parse_key() -> None:
    assert parse_key("email:Maria@Example.com").key == "email:maria@example.com"
    with pytest.raises(InvalidIdentity):
        parse_key("maria@example.com")


def test_mask_hides_most_of_the_value() -> None:
    assert mask("email:maria.lopez@example.com") == "email:ma…om"
    assert "lopez" not in mask("email:maria.lopez@example.com")


@given(st.from_regex(r"[A-Za-z0-9._%+-]{1,20}@[A-Za-z0-9-]{1,20}\.[A-Za-z]{2,6}", fullmatch=True))
def test_email_normalization_is_idempotent(address: str) -> None:
    once = normalize(IdentityIn(kind="email", value=address))
    twice = normalize(IdentityIn(kind="email", value=once.value.upper()))
    assert once == twice

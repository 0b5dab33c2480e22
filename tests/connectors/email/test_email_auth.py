"""Sender authentication: Authentication-Results parsing, the verdict on a From, what a
mail's sender becomes under each ``trust_from``, and the settings that choose it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from structlog.testing import capture_logs

from connectors.email import EmailOptions
from connectors.email.auth import (
    Check,
    aligned,
    authentication_results,
    dkim_domains,
    parse_results,
    verdict,
)
from connectors.email.trust import announce, email_options, trust_mode
from router.models import InboundMessage
from tests.connectors.conftest import fixture_bytes
from tests.connectors.email.helpers import OPTIONS, one, parse

MX = "mx1.acme.test"
CHECKED = replace(OPTIONS, trust_from="authenticated", authserv_ids=(MX,))


def sender(message: InboundMessage) -> tuple[str, bool]:
    identity = message.sender.identities[0]
    return identity.value, identity.verified


# --- Authentication-Results (RFC 8601) ------------------------------------------------


def test_results_with_comments_versions_and_properties() -> None:
    server, checks = parse_results(
        "mx.acme.example 1; (a comment; with a semicolon)\r\n"
        "  spf=pass (sender SPF authorized) smtp.mailfrom=bounce@Mail.Example.COM;\r\n"
        '  dkim/1=pass header.d=example.com header.s="sel;1" (2048-bit key);'
        '  dkim = fail reason="bad signature" header.i=@esp.example;\r\n'
        "  dmarc=pass (p=reject dis=none) header.from=example.com; arc=none"
    )
    assert server == "mx.acme.example"
    assert checks == [
        Check("spf", "pass", "mail.example.com", server),
        Check("dkim", "pass", "example.com", server),
        Check("dkim", "fail", "esp.example", server),
        Check("dmarc", "pass", "example.com", server),
        Check("arc", "none", None, server),
    ]


def test_a_result_of_none_and_a_quoted_authserv_id() -> None:
    assert parse_results('"mx.acme.example"; none') == ("mx.acme.example", [])
    assert parse_results("") == ("", [])


def test_only_the_trusted_authserv_ids_are_read() -> None:
    headers = [
        ("Authentication-Results", "mx.attacker.example; dmarc=pass header.from=example.com"),
        ("Authentication-Results", "MX1.acme.test; dkim=pass header.d=example.com"),
        ("X-Other", "mx1.acme.test; dmarc=pass header.from=example.com"),
    ]
    assert authentication_results(headers, [MX]) == [Check("dkim", "pass", "example.com", MX)]
    assert authentication_results(headers, []) == []


def test_the_signing_domains_of_dkim_signatures() -> None:
    headers = [
        ("DKIM-Signature", "v=1; a=rsa-sha256; d=Example.COM; s=x; h=from; bh=a; b=b"),
        ("Dkim-Signature", "v=1; d = esp.example ; s=y"),
        ("DKIM-Signature", "v=1; s=no-domain"),
    ]
    assert dkim_domains(headers) == ["example.com", "esp.example"]


# --- the verdict ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signer", "domain", "expected"),
    [
        ("example.com", "example.com", True),
        ("example.com", "mail.example.com", True),
        ("Example.COM.", "example.com", True),
        ("mail.example.com", "example.com", False),
        ("attacker.example", "example.com", False),
        ("ample.com", "example.com", False),
        ("com", "example.com", False),
    ],
)
def test_dkim_alignment_is_the_from_domain_or_a_parent(
    signer: str, domain: str, expected: bool
) -> None:
    assert aligned(signer, domain) is expected


@pytest.mark.parametrize(
    ("checks", "verified", "reason"),
    [
        ([Check("dmarc", "pass", "example.com")], True, "dmarc=pass"),
        ([Check("dkim", "pass", "example.com")], True, "dkim=pass d=example.com"),
        ([Check("dkim", "pass", None, "postmark", author=True)], True, "author domain"),
        (
            [Check("dmarc", "fail", "example.com"), Check("dkim", "pass", "example.com")],
            False,
            "dmarc=fail",
        ),
        ([Check("dmarc", "pass", "other.example")], False, "no DMARC pass"),
        ([Check("dkim", "pass", "attacker.example")], False, "no DMARC pass"),
        ([Check("dkim", "fail", "example.com")], False, "no DMARC pass"),
        ([Check("dkim", "pass", None)], False, "no DMARC pass"),
        ([Check("spf", "pass", "example.com")], False, "no DMARC pass"),
        ([], False, "no DMARC pass"),
    ],
)
def test_the_verdict_on_a_from_domain(checks: list[Check], verified: bool, reason: str) -> None:
    found = verdict("Example.com", checks)
    assert found.verified is verified
    assert reason in found.reason


# --- what the sender becomes ----------------------------------------------------------


def test_a_forged_from_without_a_verdict_is_an_unverified_suggestion() -> None:
    """Anyone can write Maria's address in From: with nothing proving it, the address is
    only a suggestion, and the verdict is on the message."""
    message = one("plain.eml", replace(OPTIONS, trust_from="authenticated"))
    assert sender(message) == ("maria.lopez@example.com", False)
    assert message.attributes["email_auth"] == {
        "trust_from": "authenticated",
        "verified": False,
        "authenticated": False,
        "reason": "no DMARC pass or aligned DKIM pass",
        "checks": [],
    }


def test_a_dmarc_pass_from_the_trusted_mx_verifies_the_from() -> None:
    message = one("authenticated.eml", CHECKED)
    assert sender(message) == ("maria.lopez@example.com", True)
    auth = message.attributes["email_auth"]
    assert (auth["verified"], auth["authenticated"], auth["reason"]) == (True, True, "dmarc=pass")
    assert auth["checks"] == [
        {"method": "dmarc", "result": "pass", "domain": "example.com", "by": MX},
        {"method": "dkim", "result": "pass", "domain": "example.com", "by": MX},
        {"method": "spf", "result": "pass", "domain": "example.com", "by": MX},
    ]


def test_an_aligned_dkim_pass_alone_verifies_the_from() -> None:
    raw = fixture_bytes("email", "authenticated.eml").replace(b"dmarc=pass", b"dmarc=none")
    [message] = parse(raw, CHECKED).messages
    assert sender(message) == ("maria.lopez@example.com", True)
    assert message.attributes["email_auth"]["reason"] == "dkim=pass d=example.com"


def test_a_spoof_with_a_forged_verdict_from_another_server_stays_unverified() -> None:
    """The trusted MX found DMARC failing; the attacker's own Authentication-Results
    (another authserv-id) is not read."""
    message = one("spoofed.eml", CHECKED)
    assert sender(message) == ("maria.lopez@example.com", False)
    auth = message.attributes["email_auth"]
    assert auth["reason"] == "dmarc=fail"
    assert {check["by"] for check in auth["checks"]} == {MX}


def without(raw: bytes, start: bytes) -> bytes:
    """``raw`` without the header fields that start with ``start`` (folded lines too)."""
    kept: list[bytes] = []
    dropping = False
    for line in raw.splitlines(keepends=True):
        if not line.startswith((b" ", b"\t")):
            dropping = line.startswith(start)
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def test_only_an_untrusted_verdict_is_no_verdict() -> None:
    raw = without(fixture_bytes("email", "spoofed.eml"), b"Authentication-Results: mx1.acme.test")
    assert raw.count(b"Authentication-Results:") == 1
    [message] = parse(raw, CHECKED).messages
    assert sender(message) == ("maria.lopez@example.com", False)
    assert message.attributes["email_auth"]["checks"] == []


def test_trust_from_always_takes_the_from_as_verified_and_still_records_the_verdict() -> None:
    message = one("spoofed.eml", replace(CHECKED, trust_from="always"))
    assert sender(message) == ("maria.lopez@example.com", True)
    auth = message.attributes["email_auth"]
    assert (auth["verified"], auth["authenticated"], auth["reason"]) == (True, False, "dmarc=fail")


def test_the_way_ins_own_checks_count_like_a_trusted_servers() -> None:
    """A webhook provider's verdict (``EmailFields.checks`` / ``parse_email(checks=)``)."""
    options = replace(OPTIONS, trust_from="authenticated")
    raw = fixture_bytes("email", "plain.eml")
    passed = (Check("dkim", "pass", "example.com", "sendgrid"),)
    failed = (Check("dkim", "fail", "example.com", "sendgrid"),)
    for checks, verified in ((passed, True), (failed, False)):
        [message] = parse(raw, options, checks=checks).messages
        assert sender(message) == ("maria.lopez@example.com", verified)
        assert message.attributes["email_auth"]["checks"][0]["by"] == "sendgrid"


def test_a_bounce_records_no_verdict() -> None:
    message = one("bounce_postfix.eml", replace(OPTIONS, trust_from="authenticated"))
    assert message.kind == "bounce"
    assert "email_auth" not in message.attributes


# --- where it arrived -----------------------------------------------------------------


def test_the_inbox_is_the_own_address_it_was_sent_to_without_its_plus_tag() -> None:
    """To billing@ (not ours), Cc support+billing@ (ours, tagged): the support inbox."""
    assert one("authenticated.eml").inbox == "email:support@acme.test"


def test_without_an_own_address_the_inbox_is_the_first_to() -> None:
    message = one("authenticated.eml", replace(OPTIONS, own_addresses=()))
    assert message.inbox == "email:billing@acme.test"


def test_an_envelope_recipient_names_the_inbox_of_a_bcc() -> None:
    raw = (
        fixture_bytes("email", "plain.eml")
        .replace(b"To: Acme Support <support@acme.test>", b"To: Someone <someone@example.org>")
        .replace(b"Delivered-To: support@acme.test\n", b"")
    )
    [message] = parse(raw, recipients=("Sales+con_1@ACME.test",)).messages
    assert message.inbox == "email:someone@example.org"
    own = replace(OPTIONS, own_addresses=("support@acme.test", "sales@acme.test"))
    [message] = parse(raw, own, recipients=("Sales+con_1@ACME.test",)).messages
    assert message.inbox == "email:sales@acme.test"


# --- the settings ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trust_from", "authserv_ids", "mode"),
    [
        ("", (), "always"),
        ("", (MX,), "authenticated"),
        ("authenticated", (), "authenticated"),
        ("always", (MX,), "always"),
    ],
)
def test_an_empty_trust_from_follows_authserv_ids(
    trust_from: str, authserv_ids: tuple[str, ...], mode: str
) -> None:
    assert trust_mode(trust_from, authserv_ids) == mode
    options = email_options(["Support@Acme.test"], 10, trust_from, [" MX1.Acme.test "])
    assert options.own_addresses == ("support@acme.test",)
    assert options.authserv_ids == ("mx1.acme.test",)


def test_start_up_warns_once_when_a_from_can_be_forged_or_never_verified() -> None:
    always = EmailOptions(trust_from="always")
    blind = EmailOptions(trust_from="authenticated")
    with capture_logs() as logs:
        assert announce("test-always", always) == "email.from_not_authenticated"
        assert announce("test-always", always) == "email.from_not_authenticated"
        assert announce("test-blind", blind) == "email.from_never_verified"
        assert announce("test-hook", blind, provider_verdicts=True) is None
        assert announce("test-mx", replace(blind, authserv_ids=(MX,))) is None
    assert [(e["event"], e["connector"], e["log_level"]) for e in logs] == [
        ("email.from_not_authenticated", "test-always", "warning"),
        ("email.from_never_verified", "test-blind", "warning"),
    ]

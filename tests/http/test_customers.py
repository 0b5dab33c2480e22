"""One history per customer: identity, lookup, history paging, merges."""

from __future__ import annotations

from typing import Any

from tests.http.conftest import AUTH, Client, message


async def post(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/messages", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    return dict(await resp.json())


def person(*identities: tuple[str, str, bool], **overrides: Any) -> dict[str, Any]:
    return message(
        sender={
            "name": overrides.pop("name", "Maria Lopez"),
            "identities": [{"kind": k, "value": v, "verified": ok} for k, v, ok in identities],
        },
        **overrides,
    )


async def test_verified_identities_join_channels_into_one_customer(client: Client) -> None:
    by_mail = await post(
        client,
        person(("email", "maria@example.com", True), channel="email", source="mail", thread=None),
    )
    by_whatsapp = await post(
        client,
        person(
            ("whatsapp", "+34612345678", True),
            ("email", "maria@example.com", True),
            channel="social",
            source="wa",
            thread=None,
        ),
    )
    by_sms = await post(
        client, person(("sms", "+34 612 345 678", True), channel="sms", source="sms", thread=None)
    )
    assert by_mail["customer_id"] == by_whatsapp["customer_id"] == by_sms["customer_id"]
    resp = await client.get("/v1/customers?identity=phone:+34612345678", headers=AUTH)
    (found,) = (await resp.json())["customers"]
    assert found["customer_id"] == by_mail["customer_id"]
    resp = await client.get(f"/v1/customers/{found['customer_id']}/history", headers=AUTH)
    channels = [m["channel"] for m in (await resp.json())["messages"]]
    assert sorted(channels) == ["email", "sms", "social"]


async def test_a_typed_email_is_only_a_suggestion(client: Client) -> None:
    owner = await post(
        client,
        person(("email", "maria@example.com", True), thread=None, source="mail", channel="email"),
    )
    typed = await post(
        client, person(("chat_visitor", "v-1", True), ("email", "Maria@Example.com", False))
    )
    assert typed["customer_id"] != owner["customer_id"]
    resp = await client.get(f"/v1/customers/{typed['customer_id']}", headers=AUTH)
    profile = await resp.json()
    (link,) = profile["suggested"]
    assert link["identity"]["value"] == "maria@example.com"
    assert link["other_customer_id"] == owner["customer_id"]


async def test_history_is_newest_first_and_pages_without_gaps(client: Client) -> None:
    first = None
    for minute in range(7):
        accepted = await post(
            client, message(sent_at=f"2026-11-22T10:0{minute}:00Z", text=f"m{minute}")
        )
        first = first or accepted
    assert first is not None
    seen: list[str] = []
    url = f"/v1/customers/{first['customer_id']}/history?limit=3"
    while url:
        page = await (await client.get(url, headers=AUTH)).json()
        seen += [m["text"] for m in page["messages"]]
        nxt = page["next_before"]
        url = f"/v1/customers/{first['customer_id']}/history?limit=3&before={nxt}" if nxt else ""
    assert seen == [f"m{i}" for i in reversed(range(7))]


async def test_merge_through_the_api_keeps_all_history_and_redirects(client: Client) -> None:
    a = await post(client, person(("chat_visitor", "v-a", True), thread="ta", text="from a"))
    b = await post(client, person(("chat_visitor", "v-b", True), thread="tb", text="from b"))
    resp = await client.post(
        f"/v1/customers/{a['customer_id']}/merge", json={"other": b["customer_id"]}, headers=AUTH
    )
    assert resp.status == 200, await resp.text()
    merged = await resp.json()
    assert merged["merge"]["winner"] == a["customer_id"]
    keys = {(i["kind"], i["value"]) for i in merged["customer"]["identities"]}
    assert {("chat_visitor", "v-a"), ("chat_visitor", "v-b")} <= keys

    resp = await client.get(
        f"/v1/customers/{b['customer_id']}/history", headers=AUTH, allow_redirects=False
    )
    assert resp.status == 308
    assert resp.headers["Location"] == f"/v1/customers/{a['customer_id']}/history"
    resp = await client.get(f"/v1/customers/{b['customer_id']}/history", headers=AUTH)
    texts = sorted(m["text"] for m in (await resp.json())["messages"])
    assert texts == ["from a", "from b"]

    again = await client.post(
        f"/v1/customers/{a['customer_id']}/merge", json={"other": b["customer_id"]}, headers=AUTH
    )
    assert again.status == 409
    assert (await again.json())["error"]["code"] == "conflict"
    missing = await client.post(
        f"/v1/customers/{a['customer_id']}/merge", json={"other": "cus_nobody"}, headers=AUTH
    )
    assert missing.status == 404


async def test_conversation_shows_state_queue_and_deadline(client: Client) -> None:
    accepted = await post(client, message())
    resp = await client.get(f"/v1/conversations/{accepted['conversation_id']}", headers=AUTH)
    conv = await resp.json()
    assert conv["state"] == "open"
    assert conv["queue"] == "default"
    assert conv["priority"] == 3
    assert conv["deadline"] == accepted["deadline"]
    assert conv["message_count"] == 1

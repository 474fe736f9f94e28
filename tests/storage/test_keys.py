"""The keyspace document in storage/keys.py matches what the Lua scripts write."""

import re
import time
from pathlib import Path
from typing import Any

import redis

from server.storage import keys
from tests.helpers import EDITOR, INGEST_TOKEN

LUA = Path(keys.__file__).resolve().parent / "lua"


def test_enrolment_record_separator_is_the_one_enrol_lua_writes():
    script = (LUA / "enrol.lua").read_text(encoding="utf-8")
    (escape,) = re.findall(r'^local SEPARATOR = "\\(\d+)"', script, flags=re.MULTILINE)
    separator = chr(int(escape))  # Lua's "\ddd" is a decimal byte
    assert separator == "\x1f"
    doc = keys.__doc__ or ""
    entry = doc.split(":enrolments", 1)[1].split("sw:{", 1)[0]
    assert f"<variant index>{'␟'}<segment values…>" in entry
    assert f"\\x{ord(separator):02x}" in entry
    assert "|" not in entry


# The placeholders of the keyspace document, as the server's patterns allow them.
PLACEHOLDERS = {
    "<exp>": "[a-z0-9][a-z0-9_-]{0,63}",
    "<phase>": "[0-9]+",
    "<attr>": "[a-z][a-z0-9_]{0,31}",
    "<sha256>": "[0-9a-f]{64}",
    "<v>": "[0-9]+",
    "<goal>": "[a-z0-9][a-z0-9_-]{0,63}",
    "<value>": "[^:]+",
    "<day>": "[0-9]{4}-[0-9]{2}-[0-9]{2}",
}
SHOP: dict[str, Any] = {
    "key": "checkout-button",
    "name": "Checkout button",
    "variants": [{"key": "control"}, {"key": "green"}],
    "goals": [
        {"key": "purchase", "primary": True},
        {"key": "revenue", "kind": "revenue", "event": "purchase"},
        {"key": "margin", "kind": "margin", "event": "purchase"},
        {"key": "add_to_cart"},
    ],
    "segments": ["source", "device"],
}
INGEST = {"X-Splitwerk-Ingest-Key": INGEST_TOKEN}


def _regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(<[a-z0-9]+>)", pattern)
    return re.compile("".join(PLACEHOLDERS.get(part, re.escape(part)) for part in parts))


def _documented_keys() -> list[tuple[re.Pattern[str], str]]:
    """(key pattern, Redis type) of each row of the keyspace table."""
    rows = re.findall(r"^(sw:\S+)\s+(hash|string|list|set|zset)\s", keys.__doc__ or "", re.M)
    return [(_regex(name), kind) for name, kind in rows]


def _documented_counter_fields() -> list[re.Pattern[str]]:
    """The counter fields of ``…:counts`` that the document lists, with the per-segment and
    per-day forms of the prefixes its last item names."""
    section = (keys.__doc__ or "").split("Counter fields", 1)[1].split("Bounds", 1)[0]
    patterns = re.findall(r"^- ``([a-z]+:[^`]+)``", section, re.M)
    patterns += re.findall(r", ``([a-z]+:<v>:<goal>)``", section)
    also = re.search(
        r"^- ([a-z/]+) also per segment value \(``…(:[^`]+)``\)\s+"
        r"and per UTC day\s+\(``…(:[^`]+)``",
        section,
        re.M,
    )
    assert also is not None
    prefixes, segment, daily = also.groups()
    for prefix in prefixes.split("/"):
        patterns += [f"{prefix}:<v>{segment}", f"{prefix}:<v>{daily}"]
    return [_regex(pattern) for pattern in patterns]


def test_every_key_and_counter_the_scripts_write_is_in_the_keyspace_document(
    client: Any, redis_client: redis.Redis
) -> None:
    assert client.post("/v1/experiments", json=SHOP, headers=EDITOR).status_code == 201
    assert client.post("/v1/experiments/checkout-button/start", headers=EDITOR).status_code == 200
    draft = {**SHOP, "key": "draft", "segments": []}
    assert client.post("/v1/experiments", json=draft, headers=EDITOR).status_code == 201
    assert client.delete("/v1/experiments/draft", headers=EDITOR).status_code == 204
    for number in range(6):
        attributes = {"source": f"s{number % 3}", "device": "mobile"}
        visitor = {"visitor": f"v-{number}", "attributes": attributes}
        assert client.post("/v1/assign", json=visitor).status_code == 200
    events = [
        {"type": "conversion", "id": "c-1", "visitor": "v-1", "goal": "add_to_cart"},
        {"type": "order", "visitor": "v-2", "order_id": "o-2", "revenue": "119.00", "tax": "19"},
        {"type": "order", "visitor": "v-3", "order_id": "o:3", "revenue": "50.00"},
        # over the value cap: the differences of the capped sums (ds, dq, dqh) are written too
        {"type": "order", "visitor": "v-4", "order_id": "o-4", "revenue": "1500.00"},
        {"type": "refund", "id": "r-1", "order_id": "o-2", "amount": "19.00"},
    ]
    answer = client.post("/v1/events", json={"events": events}, headers=INGEST)
    assert [item["status"] for item in answer.json["results"]] == ["accepted"] * len(events)
    assert client.get("/readyz").status_code == 200
    assert client.delete("/v1/visitors/v-5", headers=EDITOR).status_code == 200

    documented = _documented_keys()
    for name in (key.decode() for key in redis_client.scan_iter()):
        kinds = [kind for pattern, kind in documented if pattern.fullmatch(name)]
        assert kinds, f"{name} is not in the keyspace document"
        assert redis_client.type(name).decode() in kinds, name
    fields = _documented_counter_fields()
    stored = redis_client.hkeys(keys.counts("checkout-button", 1))
    assert len(stored) > 20
    for field in (item.decode() for item in stored):
        assert any(pattern.fullmatch(field) for pattern in fields), field
    assert any(field.startswith(b"ds:") for field in stored)

    # the records, as documented: "<variant index>␟<segment values…>" and the order record
    separator = "\x1f"
    enrolments = redis_client.hvals(keys.enrolments("checkout-button", 1))
    assert {len(record.decode().split(separator)) for record in enrolments} == {3}
    for record in redis_client.hvals(keys.orders("checkout-button", 1)):
        parts = record.decode().split(separator)  # pseudonym, variant, gross, net, refunded,
        assert len(parts) == 6 + len(SHOP["segments"])  # goals, then the segment values
        assert all(part.lstrip("-").isdigit() for part in parts[1:5])
    # idempotency members in their namespaces, scored minute·2^24 + a 24-bit digest
    digests = 2**24
    for member, score in redis_client.zrange(
        keys.seen("checkout-button", 1), 0, -1, withscores=True
    ):
        assert re.fullmatch(r"c:[A-Za-z0-9_-]{16}:c-1|o:o-[24]|o:o:3|r:3:o-2:r-1", member.decode())
        assert abs(score // digests - time.time() // 60) <= 1

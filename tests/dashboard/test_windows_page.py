"""The experiment page of a windowed goal (issue 21): matured beside provisional, close dates."""

from __future__ import annotations

import datetime as dt
import html
import time
from typing import Any

import redis

from dashboard import formatting
from tests.api.test_windows import DAY, KEY, Shop
from tests.dashboard.conftest import sign_in
from tests.helpers import EDITOR_TOKEN


def test_page_shows_the_matured_sample_the_provisional_sentence_and_the_close_dates(
    redis_server: Any, redis_client: redis.Redis
) -> None:
    shop = Shop(redis_server.url)
    now = time.time()
    shop.create()
    shop.act("start", now - 60 * DAY)
    for number in range(6):
        shop.enrol(f"old-{number}", now - 60 * DAY)
        shop.enrol(f"new-{number}", now - 2 * DAY)
    shop.act("stop", now - DAY)
    client = shop.app.test_client()
    client.set_cookie("splitwerk_locale", "en", domain="localhost")
    page = html.unescape(
        sign_in(client, EDITOR_TOKEN).get(f"/dashboard/experiments/{KEY}").get_data(as_text=True)
    )
    old, close, final = (
        formatting.date(dt.datetime.fromtimestamp(moment, dt.UTC).date(), "en")
        for moment in (now - 60 * DAY, now - DAY + 30 * DAY, now - DAY + 44 * DAY)
    )
    assert f"windows close {close}, figures final {final}" in page
    # purchase: 30-day window, no return period; margin: 30 + 14 days; 12 visitors in all
    assert f"Matured figures: visitors enrolled up to {old}, after their 30-day window" in page
    assert f"Matured figures: visitors enrolled up to {old}, after their 44-day window" in page
    assert "Provisional, on all 12 visitors so far: Not enough data yet" in page

"""Bot detection from User-Agent strings, with the shipped marker list."""

from importlib import resources

import pytest

from server.core.bots import BotDetector

DETECTOR = BotDetector.default()

BOTS = {
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Googlebot smartphone": "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.184 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Google-InspectionTool": "Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)",
    "AdsBot-Google": "AdsBot-Google (+http://www.google.com/adsbot.html)",
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "DuckDuckBot": "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
    "YandexBot": "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Baiduspider": "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Yahoo Slurp": "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    "facebookexternalhit": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Twitterbot": "Twitterbot/1.0",
    "LinkedInBot": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Applebot": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
    "AhrefsBot": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "SemrushBot": "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "MJ12bot": "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
    "PetalBot": "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
    "Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
    "GPTBot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)",
    "ChatGPT-User": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; "
    "ChatGPT-User/1.0; +https://openai.com/bot",
    "ClaudeBot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
    "+claudebot@anthropic.com)",
    "CCBot": "CCBot/2.0 (https://commoncrawl.org/faq/)",
    "Bytespider": "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
    "Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
    "Screaming Frog": "Screaming Frog SEO Spider/19.0",
    "ia_archiver": "ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)",
    "generic crawler": "ExampleCrawler/0.3 (+https://example.org/crawler)",
    "UptimeRobot": "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
}

BROWSERS = {
    "mobile Safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "iPad Safari": "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "desktop Safari": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Chrome Windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Chrome Android": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Mobile Safari/537.36",
    "Firefox": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Firefox Android": "Mozilla/5.0 (Android 14; Mobile; rv:123.0) Gecko/123.0 Firefox/123.0",
    "Samsung Internet": "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 "
    "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
    "Edge": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66",
    "Facebook in-app browser": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/450.0.0.38.108;]",
    "Cubot phone": "Mozilla/5.0 (Linux; Android 11; CUBOT_X50) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Sogou browser": "Mozilla/5.0 (Linux; Android 10; V2020A) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/87.0.4280.141 Mobile Safari/537.36 SogouMobileBrowser/5.30.0",
    # Our own browser tests run headless Chromium; it must be assigned like a visitor.
    "HeadlessChrome": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/122.0.6261.57 Safari/537.36",
    # Shops call the API from their back ends with these clients, on behalf of visitors.
    "curl": "curl/8.5.0",
    "python-requests": "python-requests/2.31.0",
    "Wget": "Wget/1.21.4",
}


@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_known_bot_is_detected(user_agent):
    assert DETECTOR.is_bot(user_agent)


@pytest.mark.parametrize("user_agent", BROWSERS.values(), ids=BROWSERS.keys())
def test_browser_and_server_client_are_not_bots(user_agent):
    assert not DETECTOR.is_bot(user_agent)


@pytest.mark.parametrize("user_agent", ["", None])
def test_missing_user_agent_is_not_a_bot(user_agent):
    assert not DETECTOR.is_bot(user_agent)


def test_matching_ignores_case():
    assert DETECTOR.is_bot("mozilla/5.0 (compatible; GOOGLEBOT/2.1)")


def test_exclusion_blanks_only_its_fragment():
    detector = BotDetector(["bot", "!cubot"])
    assert not detector.is_bot("Android 11; CUBOT_X50")
    assert detector.is_bot("Android 11; CUBOT_X50; SomeBot/1.0")


def test_comments_and_blank_lines_are_ignored():
    detector = BotDetector(["# bot", "", "  crawler  "])
    assert not detector.is_bot("a bot")
    assert detector.is_bot("FancyCrawler/1")


def test_list_without_markers_is_refused():
    with pytest.raises(ValueError, match="at least one marker"):
        BotDetector(["# nothing", "!cubot"])


def test_empty_exclusion_is_refused():
    with pytest.raises(ValueError, match="no fragment"):
        BotDetector(["bot", "!"])


def test_detector_loads_from_a_path(tmp_path):
    path = tmp_path / "bots.txt"
    path.write_text("# ours\nAcmeMonitor\n", encoding="utf-8")
    detector = BotDetector.from_path(path)
    assert detector.is_bot("AcmeMonitor/2.0")
    assert not detector.is_bot("Googlebot/2.1")


def test_shipped_list_names_the_required_bots_and_not_headless_chrome():
    text = resources.files("server.core").joinpath("bot_user_agents.txt").read_text("utf-8")
    lines = {line.strip().lower() for line in text.splitlines()}
    for name in ["googlebot", "bingbot", "duckduckbot", "yandexbot", "baiduspider",
                 "facebookexternalhit", "twitterbot", "linkedinbot", "slackbot", "applebot",
                 "ahrefsbot", "semrushbot", "mj12bot", "petalbot", "gptbot", "claudebot",
                 "ccbot", "bot", "crawler", "spider"]:  # fmt: skip
        assert name in lines
    for absent in ["headlesschrome", "curl", "wget", "python-requests"]:
        assert absent not in lines

"""The embed code: small, loads the versioned snippet asynchronously, safe in any <head>."""

from __future__ import annotations

import hashlib
import re

from server.services import install

# A typical Splitwerk address (30 characters); the budget holds up to this length.
BASE_URL = "https://splitwerk.shop-beispiel.de"[:30]


def test_embed_code_stays_within_its_budget() -> None:
    code = install.embed_code(BASE_URL)
    assert len(code.encode()) <= install.EMBED_BUDGET_BYTES, len(code.encode())


def test_embed_code_loads_the_current_version_asynchronously_and_hides_only_marked_elements() -> (
    None
):
    code = install.embed_code(BASE_URL + "/")
    body = install.SNIPPET_FILE.read_bytes()
    version = hashlib.sha256(body).hexdigest()[: install.VERSION_LENGTH]
    assert install.current_version() == version
    assert f'"{BASE_URL}/sdk.js?v={version}"' in code
    assert "e.async=1" in code
    assert f",{install.REVEAL_TIMEOUT_MS})" in code
    assert install.REVEAL_TIMEOUT_MS <= 1000
    style = re.fullmatch(r"<style>(.*?)</style><script>.*</script>", code)
    assert style is not None
    assert style.group(1) == ".splitwerk-loading [data-splitwerk-hide]{visibility:hidden}"


def test_embed_code_cannot_be_broken_out_of_by_the_url() -> None:
    code = install.embed_code("https://x.example/</script><script>alert(1)//")
    assert code.count("</script>") == 1
    assert code.endswith("</script>")


def test_readme_shows_todays_embed_code() -> None:
    readme = (install.SNIPPET_DIRECTORY.parents[1] / "README.md").read_text(encoding="utf-8")
    expected = install.embed_code("https://ab.shop.example")
    assert f"```html\n{expected}\n```" in readme, f"README's embed code is stale; use:\n{expected}"

"""The keyspace document in storage/keys.py matches what the Lua scripts write."""

import re
from pathlib import Path

from server.storage import keys

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

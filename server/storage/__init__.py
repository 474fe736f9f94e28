"""Redis storage: the keyspace, the Lua scripts, and bytes ⇄ core models."""

#!lua
-- announce.lua: remember an announcement once and queue its webhook delivery, atomically, so
-- that an announcement is neither lost nor sent twice when the evaluator stops in between.
--
-- KEYS[1]  sw:{_webhooks}:announced   hash  announcement field -> unix seconds
-- KEYS[2]  sw:{_webhooks}:outbox      zset  delivery id -> unix seconds of the next attempt
-- KEYS[3]  sw:{_webhooks}:deliveries  hash  delivery id -> delivery JSON
-- ARGV[1]  the announcement's field (keys.announcement)
-- ARGV[2]  now, unix seconds (the first attempt is due at once)
-- ARGV[3]  delivery id, or "" to only remember the announcement (no webhook configured)
-- ARGV[4]  delivery JSON
-- ARGV[5]  the outbox's limit (keys.OUTBOX_LIMIT)
-- Returns: 0 announced before (nothing written); 1 remembered (and queued when asked);
--          2 remembered, but the outbox is full and the delivery was dropped.

if redis.call("HSETNX", KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
if ARGV[3] == "" then
  return 1
end
if redis.call("ZCARD", KEYS[2]) >= tonumber(ARGV[5]) then
  return 2
end
redis.call("ZADD", KEYS[2], ARGV[2], ARGV[3])
redis.call("HSET", KEYS[3], ARGV[3], ARGV[4])
return 1

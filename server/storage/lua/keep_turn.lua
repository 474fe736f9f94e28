#!lua
-- keep_turn.lua: extend the evaluator's turn, but only while it is still this worker's.
--
-- KEYS[1]  sw:evaluator-turn  string  the token of the worker whose turn it is
-- ARGV[1]  this worker's token
-- ARGV[2]  milliseconds the turn lasts from now
-- Returns: 1 extended; 0 the turn expired or another worker holds it (nothing written).

if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0

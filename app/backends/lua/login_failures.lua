-- KEYS: the account's and the address's sets. ARGV: window, the two limits, and
-- "1" to record a failure first. Returns the seconds to wait, as a string.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if ARGV[4] == '1' then
    redis.call('ZADD', key, now, tostring(now) .. ':' .. redis.call('INCR', key .. ':n'))
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
    redis.call('PEXPIRE', key .. ':n', math.ceil(window * 1000))
  end
  if redis.call('ZCARD', key) >= tonumber(ARGV[i + 1]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
return tostring(wait)

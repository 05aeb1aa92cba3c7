-- -> changes from removing every worker whose heartbeat ran out (a few per call)
local out = {}
local dead = redis.call('ZRANGEBYSCORE', prefix .. 'workers', '-inf', now(), 'LIMIT', 0, 20)
for _, worker in ipairs(dead) do remove(out, worker) end
return out

-- ARGV: worker, ttl -> 1 alive (beat recorded), 0 not registered
local workers = prefix .. 'workers'
if not redis.call('ZSCORE', workers, ARGV[1]) then return 0 end
redis.call('ZADD', workers, now() + tonumber(ARGV[2]), ARGV[1])
return 1

-- ARGV: worker, ttl, room, user, count -> 1 join, 2 leave, 0 neither, -1 not registered
local workers = prefix .. 'workers'
if not redis.call('ZSCORE', workers, ARGV[1]) then return -1 end
redis.call('ZADD', workers, now() + tonumber(ARGV[2]), ARGV[1])
local change = put(prefix .. 'w:' .. ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[5]))
if change == 'join' then return 1 elseif change == 'leave' then return 2 end
return 0

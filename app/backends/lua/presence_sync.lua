-- ARGV: worker, ttl, then room, user, count for every local pair -> changes
local wkey = prefix .. 'w:' .. ARGV[1]
redis.call('ZADD', prefix .. 'workers', now() + tonumber(ARGV[2]), ARGV[1])
local want, out = {}, {}
for i = 3, #ARGV, 3 do want[ARGV[i] .. ':' .. ARGV[i + 1]] = true end
for _, field in ipairs(redis.call('HKEYS', wkey)) do
  if not want[field] then
    local room, user = string.match(field, '^(%d+):(.*)$')
    note(out, room, put(wkey, room, user, 0), user)
  end
end
for i = 3, #ARGV, 3 do
  note(out, ARGV[i], put(wkey, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])), ARGV[i + 1])
end
return out

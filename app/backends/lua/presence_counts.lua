-- -> room, number of users, for every room with someone in it
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', prefix .. 'rooms')) do
  table.insert(out, room)
  table.insert(out, redis.call('HLEN', prefix .. 'r:' .. room))
end
return out

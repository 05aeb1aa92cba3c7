-- Shared by every presence script. KEYS[1]: the key prefix.
local prefix = KEYS[1]
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- Move a user's socket count in a room by delta; 'join', 'leave' or nil.
local function shift(room, user, delta)
  local key = prefix .. 'r:' .. room
  local after = redis.call('HINCRBY', key, user, delta)
  local before = after - delta
  if after <= 0 then
    redis.call('HDEL', key, user)
    if redis.call('HLEN', key) == 0 then redis.call('SREM', prefix .. 'rooms', room) end
  else
    redis.call('SADD', prefix .. 'rooms', room)
  end
  if before <= 0 and after > 0 then return 'join' end
  if before > 0 and after <= 0 then return 'leave' end
  return nil
end
-- Set one worker's sockets of a user in a room to count.
local function put(wkey, room, user, count)
  local field = room .. ':' .. user
  local old = tonumber(redis.call('HGET', wkey, field) or '0')
  if count > 0 then redis.call('HSET', wkey, field, count) else redis.call('HDEL', wkey, field) end
  if count == old then return nil end
  return shift(room, user, count - old)
end
local function note(out, room, change, user)
  if change then
    table.insert(out, room)
    table.insert(out, change)
    table.insert(out, user)
  end
end
-- Take a worker's whole contribution away.
local function remove(out, worker)
  local wkey = prefix .. 'w:' .. worker
  local fields = redis.call('HGETALL', wkey)
  for i = 1, #fields, 2 do
    local room, user = string.match(fields[i], '^(%d+):(.*)$')
    note(out, room, shift(room, user, -tonumber(fields[i + 1])), user)
  end
  redis.call('DEL', wkey)
  redis.call('ZREM', prefix .. 'workers', worker)
end

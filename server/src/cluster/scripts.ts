/**
 * The Lua scripts behind the cluster store (store.ts). Each runs atomically in Redis, so two
 * edges placing at once, or reaping the same dead host, never over-commit a host or place a
 * session twice. Keys are built from the prefix inside the scripts (one Redis, no cluster
 * slots), so the scripts take the prefix as their first argument.
 *
 * Data, under prefix P:
 * - P..'hosts'               SET of host ids ever registered and not yet reaped
 * - P..'host:'..id           HASH slots, load, provider, state (serving|draining), seen; expires
 *                            unless the host renews it (its heartbeat)
 * - P..'host:'..id..':rooms' SET of rooms placed on the host (its used slots)
 * - P..'session:'..room      HASH host, epoch, edge, state (placed|waiting), since
 * - P..'epoch'               counter: every placement takes the next value (fencing)
 * - P..'waiting'             ZSET of rooms waiting for a renderer, by when they began to wait
 */

/** Shared by place and reap: picks the least-loaded serving host with a free slot and places the room. */
const PLACE_FN = `
local function place(P, room, edge, now, maxLoad, exclude)
  local best, bestScore = nil, nil
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'hosts')) do
    local h = P .. 'host:' .. id
    if id ~= exclude and redis.call('EXISTS', h) == 1 then
      local f = redis.call('HMGET', h, 'slots', 'load', 'state')
      local slots, load = tonumber(f[1]) or 0, tonumber(f[2]) or 0
      local used = redis.call('SCARD', h .. ':rooms')
      if f[3] == 'serving' and used < slots and load <= maxLoad then
        local score = used / slots + load / 1000
        if bestScore == nil or score < bestScore or (score == bestScore and id < best) then best, bestScore = id, score end
      end
    end
  end
  local s = P .. 'session:' .. room
  if best == nil then
    redis.call('HSET', s, 'state', 'waiting', 'edge', edge, 'host', '')
    redis.call('ZADD', P .. 'waiting', 'NX', now, room)
    return nil
  end
  local epoch = redis.call('INCR', P .. 'epoch')
  redis.call('SADD', P .. 'host:' .. best .. ':rooms', room)
  redis.call('HSET', s, 'host', best, 'epoch', epoch, 'edge', edge, 'state', 'placed', 'since', now)
  redis.call('ZREM', P .. 'waiting', room)
  return {best, tostring(epoch)}
end
`;

/**
 * place(P, room, edge, now, maxLoad) → {host, epoch} | nil (the room waits).
 * A room already placed on a live host keeps its placement (idempotent for retries).
 */
export const PLACE = `${PLACE_FN}
local P, room, edge, now, maxLoad = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local s = P .. 'session:' .. room
local cur = redis.call('HMGET', s, 'state', 'host', 'epoch')
if cur[1] == 'placed' and cur[2] and redis.call('EXISTS', P .. 'host:' .. cur[2]) == 1 then return {cur[2], cur[3]} end
return place(P, room, edge, now, maxLoad, '')
`;

/**
 * release(P, room, epoch) → 1 when the room's placement had that epoch and is now gone, else 0
 * (a stale releaser, fenced). Frees the host's slot and forgets the session.
 */
export const RELEASE = `
local P, room, epoch = ARGV[1], ARGV[2], ARGV[3]
local s = P .. 'session:' .. room
local cur = redis.call('HMGET', s, 'host', 'epoch', 'state')
if cur[3] == 'waiting' and epoch == '' then
  redis.call('DEL', s); redis.call('ZREM', P .. 'waiting', room); return 1
end
if cur[2] ~= epoch then return 0 end
if cur[1] and cur[1] ~= '' then redis.call('SREM', P .. 'host:' .. cur[1] .. ':rooms', room) end
redis.call('DEL', s)
redis.call('ZREM', P .. 'waiting', room)
return 1
`;

/**
 * heartbeat(P, id, slots, load, provider, state, now, ttlMs) → {registered, rooms...}: renews the
 * host's record and returns the rooms placed on it with their epochs, flattened (room, epoch,
 * room, epoch…), after 0 when the host's record had expired (it was reaped or is new) or 1.
 * A host acts only on this list: a session it runs that is not in it was moved away while it
 * was cut off, and it must stop that session at once (fencing).
 */
export const HEARTBEAT = `
local P, id = ARGV[1], ARGV[2]
local h = P .. 'host:' .. id
local existed = redis.call('EXISTS', h)
redis.call('HSET', h, 'slots', ARGV[3], 'load', ARGV[4], 'provider', ARGV[5], 'state', ARGV[6], 'seen', ARGV[7])
redis.call('PEXPIRE', h, ARGV[8])
redis.call('SADD', P .. 'hosts', id)
local out = {existed}
for _, room in ipairs(redis.call('SMEMBERS', h .. ':rooms')) do
  local cur = redis.call('HMGET', P .. 'session:' .. room, 'host', 'epoch')
  if cur[1] == id then table.insert(out, room); table.insert(out, cur[2]) end
end
return out
`;

/**
 * reap(P, now, maxLoad) → flattened {room, from, to, epoch} for every session of a host whose
 * record expired (to and epoch empty when the room now waits). The dead host's slots and id go.
 */
export const REAP = `${PLACE_FN}
local P, now, maxLoad = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'hosts')) do
  if redis.call('EXISTS', P .. 'host:' .. id) == 0 then
    local rooms = redis.call('SMEMBERS', P .. 'host:' .. id .. ':rooms')
    redis.call('DEL', P .. 'host:' .. id .. ':rooms')
    redis.call('SREM', P .. 'hosts', id)
    for _, room in ipairs(rooms) do
      local s = P .. 'session:' .. room
      local edge = redis.call('HGET', s, 'edge') or ''
      local r = place(P, room, edge, now, maxLoad, id)
      table.insert(out, room); table.insert(out, id)
      if r then table.insert(out, r[1]); table.insert(out, r[2]) else table.insert(out, ''); table.insert(out, '') end
    end
  end
end
return out
`;

/**
 * handover(P, id, now, maxLoad) → flattened {room, edge, to, epoch} for each session of a
 * draining host that another host took (new epoch); the host turns 'draining' first, so it
 * gets nothing new. Sessions no other host can take stay and finish where they are.
 */
export const HANDOVER = `${PLACE_FN}
local P, id, now, maxLoad = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local h = P .. 'host:' .. id
if redis.call('EXISTS', h) == 1 then redis.call('HSET', h, 'state', 'draining') end
local out = {}
for _, room in ipairs(redis.call('SMEMBERS', h .. ':rooms')) do
  local s = P .. 'session:' .. room
  local edge = redis.call('HGET', s, 'edge') or ''
  local prev = redis.call('HMGET', s, 'host', 'epoch', 'since')
  local r = place(P, room, edge, now, maxLoad, id)
  if r then
    redis.call('SREM', h .. ':rooms', room)
    table.insert(out, room); table.insert(out, edge); table.insert(out, r[1]); table.insert(out, r[2])
  else
    -- Nobody can take it: it stays placed here (place() marked it waiting; undo that).
    redis.call('HSET', s, 'state', 'placed', 'host', prev[1], 'epoch', prev[2], 'since', prev[3] or now)
    redis.call('ZREM', P .. 'waiting', room)
  end
end
return out
`;

/**
 * retry(P, now, maxLoad, limit) → flattened {room, host, epoch} for waiting rooms placed now,
 * oldest first, until no host has a free slot.
 */
export const RETRY_WAITING = `${PLACE_FN}
local P, now, maxLoad, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for _, room in ipairs(redis.call('ZRANGE', P .. 'waiting', 0, limit - 1)) do
  local edge = redis.call('HGET', P .. 'session:' .. room, 'edge') or ''
  local r = place(P, room, edge, now, maxLoad, '')
  if not r then break end
  table.insert(out, room); table.insert(out, r[1]); table.insert(out, r[2])
end
return out
`;

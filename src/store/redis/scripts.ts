// The Lua scripts of the Redis engine: one per operation, so each is atomic on Redis (or on the
// topic's shard of a Redis Cluster: every key of a topic and of its dead-letter topic shares one
// hash slot). The data model and what each costs: docs/CLUSTER.md.

/**
 * KEYS[1..7]: the topic's meta hash, bodies hash, heads hash, ready list, lease zset, lease-info
 * hash, delayed zset; KEYS[8..14] the same for its dead-letter topic (nack, sweep).
 * A head is "created deliveries[ origin-topic origin-id origin-deliveries]".
 * A lease info is "delivery length max-deliveries".
 * Time is Redis's own (TIME): a lease never depends on a node's clock.
 */
const PRELUDE = `
local M, B, H, R, L, X, D = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local OVERHEAD = 96
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function head_parse(s)
  local c, d, rest = string.match(s, '^(%d+) (%d+) ?(.*)$')
  return c, tonumber(d), rest
end
local function head_text(created, deliveries, rest)
  if rest ~= '' then return created .. ' ' .. deliveries .. ' ' .. rest end
  return created .. ' ' .. deliveries
end
local function forget(m, b, h, id)
  local payload = redis.call('HGET', b, id)
  redis.call('HDEL', b, id)
  redis.call('HDEL', h, id)
  if payload then
    redis.call('HINCRBY', m, 'held', -1)
    redis.call('HINCRBY', m, 'bytes', -(#payload + OVERHEAD))
  end
  return payload
end
local function append(m, b, h, r, payload, rest, max_queue, max_bytes, policy, channel)
  local cost = #payload + OVERHEAD
  local held = tonumber(redis.call('HGET', m, 'held') or '0')
  local bytes = tonumber(redis.call('HGET', m, 'bytes') or '0')
  if held >= max_queue or bytes + cost > max_bytes then
    local count_full = held >= max_queue
    if policy == 'reject' or (count_full and held - redis.call('LLEN', r) >= max_queue) then
      if count_full then return nil, 'TOPIC_FULL topic full: holds ' .. held .. ' messages (limit ' .. max_queue .. ')' end
      return nil, 'TOPIC_FULL topic full: holds ' .. bytes .. ' bytes (limit ' .. max_bytes .. ')'
    end
    local dropped = 0
    while held >= max_queue or bytes + cost > max_bytes do
      local old = redis.call('LPOP', r)
      if not old then break end
      local p = forget(m, b, h, old)
      if p then
        held = held - 1
        bytes = bytes - (#p + OVERHEAD)
        dropped = dropped + 1
      end
    end
    redis.call('HINCRBY', m, 'dropped', dropped)
    if held >= max_queue or bytes + cost > max_bytes then
      return nil, 'TOPIC_FULL topic full: holds ' .. bytes .. ' bytes (limit ' .. max_bytes .. ')'
    end
  end
  local id = redis.call('HINCRBY', m, 'last', 1)
  redis.call('HSET', b, id, payload)
  redis.call('HSET', h, id, head_text(now, 0, rest))
  redis.call('RPUSH', r, id)
  redis.call('HINCRBY', m, 'held', 1)
  redis.call('HINCRBY', m, 'bytes', cost)
  redis.call('HINCRBY', m, 'published', 1)
  redis.call('HINCRBY', m, 'bytes_in', #payload)
  redis.call('PUBLISH', channel, head_text(id .. ' ' .. now, 0, rest) .. '\\n' .. payload)
  return id
end
-- A message whose lease ended: to the dead-letter topic past its deliveries, held back for a
-- delay, else 'back' (the caller puts it at the head of the ready list).
local function give_back(id, max_deliveries, delay, a)
  local hd = redis.call('HGET', H, id)
  if not hd then return 'gone' end
  local created, deliveries, rest = head_parse(hd)
  if a.is_dead == '0' and deliveries >= max_deliveries then
    local payload = forget(M, B, H, id)
    redis.call('HINCRBY', M, 'dead_lettered', 1)
    local dead_id, why = append(KEYS[8], KEYS[9], KEYS[10], KEYS[11], payload, a.topic .. ' ' .. id .. ' ' .. deliveries, a.dead_max_queue, a.dead_max_bytes, 'drop-oldest', a.dead_channel)
    if not dead_id then redis.call('HINCRBY', M, 'dropped', 1) end
    return 'dead'
  end
  if delay > 0 then
    redis.call('ZADD', D, now + delay, id)
    return 'delayed'
  end
  return 'back'
end
local function lease_info(id, delivery, topic)
  local info = redis.call('HGET', X, id)
  if not info then return nil, 'NO_LEASE no lease on message ' .. id .. ' of ' .. topic .. ' (acked, expired or never taken)' end
  local d, length, max_deliveries = string.match(info, '^(%d+) (%d+) (%d+)$')
  if delivery ~= '' and tonumber(delivery) ~= tonumber(d) then
    return nil, 'NO_LEASE lease on message ' .. id .. ' of ' .. topic .. ' expired and it was delivered again'
  end
  return { tonumber(d), tonumber(length), tonumber(max_deliveries) }
end
`;

/** ARGV: payload, max-queue, max-queue-bytes, policy, channel. Returns {id, created}. */
export const PUBLISH = `${PRELUDE}
local id, why = append(M, B, H, R, ARGV[1], '', tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
if not id then return redis.error_reply(why) end
return { id, now }`;

/**
 * ARGV: lease ms (0: at-most-once), max deliveries, max age ms (0: none), topic.
 * Returns nil or {id, created, deliveries, payload, origin, lease-expiry}.
 */
export const TAKE = `${PRELUDE}
local lease, max_age = tonumber(ARGV[1]), tonumber(ARGV[3])
while true do
  local id = redis.call('LPOP', R)
  if not id then return nil end
  local hd = redis.call('HGET', H, id)
  if hd then
    local created, deliveries, rest = head_parse(hd)
    if max_age > 0 and tonumber(created) < now - max_age then
      forget(M, B, H, id)
      redis.call('HINCRBY', M, 'expired', 1)
    else
      deliveries = deliveries + 1
      redis.call('HINCRBY', M, 'consumed', 1)
      if deliveries > 1 then redis.call('HINCRBY', M, 'redelivered', 1) end
      local payload
      if lease > 0 then
        payload = redis.call('HGET', B, id)
        redis.call('HSET', H, id, head_text(created, deliveries, rest))
        redis.call('ZADD', L, now + lease, id)
        redis.call('HSET', X, id, deliveries .. ' ' .. lease .. ' ' .. ARGV[2])
      else
        payload = forget(M, B, H, id)
      end
      return { id, created, deliveries, payload, rest, now + lease }
    end
  end
end`;

/** Undoes a take whose consumer left while it ran. ARGV: id, leased (1/0), head before, payload, channel. */
export const UNTAKE = `${PRELUDE}
local id = ARGV[1]
if ARGV[2] == '1' then
  if redis.call('HEXISTS', X, id) == 0 then return 0 end
  redis.call('ZREM', L, id)
  redis.call('HDEL', X, id)
else
  redis.call('HSET', B, id, ARGV[4])
  redis.call('HINCRBY', M, 'held', 1)
  redis.call('HINCRBY', M, 'bytes', #ARGV[4] + OVERHEAD)
end
redis.call('HSET', H, id, ARGV[3])
redis.call('LPUSH', R, id)
redis.call('HINCRBY', M, 'consumed', -1)
redis.call('PUBLISH', ARGV[5], 'R')
return 1`;

/** ARGV: id, delivery ('' any), topic. */
export const ACK = `${PRELUDE}
local info, why = lease_info(ARGV[1], ARGV[2], ARGV[3])
if not info then return redis.error_reply(why) end
redis.call('ZREM', L, ARGV[1])
redis.call('HDEL', X, ARGV[1])
forget(M, B, H, ARGV[1])
redis.call('HINCRBY', M, 'acked', 1)
return 1`;

/** Arguments after the first ones of NACK and SWEEP: what a return to the queue or the dead letters needs. */
const RETURN_ARGS = `
local a = { topic = ARGV[1], channel = ARGV[2], dead_channel = ARGV[3], dead_max_queue = tonumber(ARGV[4]), dead_max_bytes = tonumber(ARGV[5]), is_dead = ARGV[6] }
`;

/** ARGV: topic, channel, dead channel, dead max queue, dead max bytes, is-dead (1/0), id, delivery, delay ms. Returns the outcome. */
export const NACK = `${PRELUDE}${RETURN_ARGS}
local id = ARGV[7]
local info, why = lease_info(id, ARGV[8], a.topic)
if not info then return redis.error_reply(why) end
redis.call('ZREM', L, id)
redis.call('HDEL', X, id)
local outcome = give_back(id, info[3], tonumber(ARGV[9]), a)
if outcome == 'back' then
  redis.call('LPUSH', R, id)
  redis.call('PUBLISH', a.channel, 'R')
end
return outcome`;

/**
 * Returns expired leases (to the head, in id order, or to the dead letters) and due delayed nacks.
 * ARGV as NACK's first six. Returns {expired, released, dead-lettered, timers left}.
 */
export const SWEEP = `${PRELUDE}${RETURN_ARGS}
local function by_id(x, y) return tonumber(x) < tonumber(y) end
local back, dead = {}, 0
local due = redis.call('ZRANGEBYSCORE', L, '-inf', now, 'LIMIT', 0, 1000)
table.sort(due, by_id)
for _, id in ipairs(due) do
  local info = redis.call('HGET', X, id)
  redis.call('ZREM', L, id)
  redis.call('HDEL', X, id)
  local max_deliveries = tonumber(string.match(info or '0 0 1000000000', '^%d+ %d+ (%d+)$'))
  local outcome = give_back(id, max_deliveries, 0, a)
  if outcome == 'back' then table.insert(back, id) elseif outcome == 'dead' then dead = dead + 1 end
end
local released = redis.call('ZRANGEBYSCORE', D, '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(released) do
  redis.call('ZREM', D, id)
  table.insert(back, id)
end
table.sort(back, by_id)
for i = #back, 1, -1 do redis.call('LPUSH', R, back[i]) end
if #back > 0 then redis.call('PUBLISH', a.channel, 'R') end
return { #due, #released, dead, redis.call('ZCARD', L) + redis.call('ZCARD', D) }`;

/** ARGV: id, delivery ('' any), lease ms ('' its own length), topic. Returns the new expiry. */
export const TOUCH = `${PRELUDE}
local info, why = lease_info(ARGV[1], ARGV[2], ARGV[4])
if not info then return redis.error_reply(why) end
local length = info[2]
if ARGV[3] ~= '' then length = math.max(1, tonumber(ARGV[3])) end
redis.call('ZADD', L, now + length, ARGV[1])
redis.call('HSET', X, ARGV[1], info[1] .. ' ' .. length .. ' ' .. info[3])
return now + length`;

/** Drops the ready and the delayed messages (leased ones stay). Returns how many. */
export const PURGE = `${PRELUDE}
local n = 0
for _, id in ipairs(redis.call('LRANGE', R, 0, -1)) do
  if forget(M, B, H, id) then n = n + 1 end
end
for _, id in ipairs(redis.call('ZRANGE', D, 0, -1)) do
  if forget(M, B, H, id) then n = n + 1 end
end
redis.call('DEL', R, D)
redis.call('HINCRBY', M, 'dropped', n)
return n`;

/** Deletes the topic but its last id (ids never restart). Returns how many messages it held, -1: no such topic. */
export const DELETE = `${PRELUDE}
if redis.call('HEXISTS', M, 'published') == 0 then return -1 end
local held = tonumber(redis.call('HGET', M, 'held') or '0')
local last = redis.call('HGET', M, 'last')
redis.call('DEL', M, B, H, R, L, X, D)
if last then redis.call('HSET', M, 'last', last) end
return held`;

/**
 * Appends the queued messages with an id over `since` to `out` as id, created, deliveries,
 * payload, origin (at most `limit` of them; -1: all), oldest first: what REPLAY and PEEK read.
 */
const QUEUED = `
local function queued(out, since, limit)
  local found = 0
  for _, id in ipairs(redis.call('LRANGE', R, 0, -1)) do
    if found == limit then return end
    if tonumber(id) > since then
      local hd = redis.call('HGET', H, id)
      local payload = redis.call('HGET', B, id)
      if hd and payload then
        local created, deliveries, rest = head_parse(hd)
        table.insert(out, id)
        table.insert(out, created)
        table.insert(out, deliveries)
        table.insert(out, payload)
        table.insert(out, rest)
        found = found + 1
      end
    end
  end
end
`;

/**
 * The queued messages with an id above ARGV[1], then a marker (ARGV[3]) on the topic's channel
 * (ARGV[2]): every message written before this read reaches a subscriber before the marker.
 * Returns {last id, id, created, deliveries, payload, origin, id, ...}.
 */
export const REPLAY = `${PRELUDE}${QUEUED}
local out = { redis.call('HGET', M, 'last') or '0' }
queued(out, tonumber(ARGV[1]), -1)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return out`;

/**
 * ARGV: since, count. The first `count` queued messages with an id over `since`, nothing taken.
 * Returns {0, id, created, deliveries, payload, origin, id, ...} (REPLAY's shape).
 */
export const PEEK = `${PRELUDE}${QUEUED}
local out = { '0' }
queued(out, tonumber(ARGV[1]), tonumber(ARGV[2]))
return out`;

/** The topic's counters and sizes: {meta as a flat list, ready, leased, delayed}. */
export const STATS = `
return { redis.call('HGETALL', KEYS[1]), redis.call('LLEN', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[7]) }`;

/** Scripts by name, and how many keys each declares. */
export const SCRIPTS = {
  msgbusPublish: [PUBLISH, 7],
  msgbusTake: [TAKE, 7],
  msgbusUntake: [UNTAKE, 7],
  msgbusAck: [ACK, 7],
  msgbusNack: [NACK, 14],
  msgbusSweep: [SWEEP, 14],
  msgbusTouch: [TOUCH, 7],
  msgbusPurge: [PURGE, 7],
  msgbusDelete: [DELETE, 7],
  msgbusReplay: [REPLAY, 7],
  msgbusPeek: [PEEK, 7],
  msgbusStats: [STATS, 7],
} as const;

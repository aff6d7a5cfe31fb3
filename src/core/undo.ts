// Undoing a batch the store could not write (disk full): memory goes back to what the store
// holds, so nobody is answered for a change that was lost.

import type { BusState } from "./bus-state.ts";
import { enqueueWaiting } from "./delivery.ts";
import { type Message, messageCost } from "./message.ts";
import type { Topic } from "./topic.ts";
import type { Change, Purge } from "./uncommitted.ts";

/**
 * Undoes the batch's changes, newest first. Taken, acked, dropped and expired messages go back to
 * the head of their queue with the delivery count they had; leases granted in the batch end;
 * messages written in the batch leave (their writers were answered STORAGE; ids are not reused);
 * purged messages come back (the store forgot the purge with its batch; its purger was answered
 * STORAGE). Nothing is dispatched: waiting consumers get the messages at the next write or grant,
 * not in a loop of failing commits.
 */
export function undoUncommitted(s: BusState, changes: Change[]): void {
  // Messages put back at the head, per topic: re-sorted at the end, since an acked message
  // did not come from the head and would otherwise land behind the ones taken after it.
  const returned = new Map<Topic, number>();
  // Names deleted by changes newer than the one undone, and the topics whose changes were undone.
  const deleted = new Set<string>();
  const touched = new Set<Topic>();
  for (let i = changes.length - 1; i >= 0; i--) {
    const change = changes[i]!;
    const topic = change.topic;
    // A topic deleted in the batch stays deleted: the store keeps the delete and tries it again
    // (see SqliteStore), deleting every row of that name. So what was taken or purged before the
    // delete from a topic of that name (the deleted one, or one let go before it under
    // --max-topics) does not come back; what a newer topic of the name did after it is undone.
    if (change.kind === "deleted") {
      deleted.add(topic.name);
      continue;
    }
    if (deleted.has(topic.name)) {
      if (change.kind === "leased") s.leases.end(change.lease);
      continue;
    }
    touched.add(topic);
    if (change.kind === "purged") {
      unpurge(s, change, changes, i, returned);
      continue;
    }
    const message = change.message;
    message.deliveries = change.deliveries;
    const cost = messageCost(message.payload.length);
    if (change.kind === "added") {
      if (unwrite(s, topic, message)) {
        topic.bytes -= cost;
        s.bytes -= cost;
      }
    } else if (change.kind === "removed") {
      topic.queue.unshift(message);
      returned.set(topic, (returned.get(topic) ?? 0) + 1);
      topic.bytes += cost;
      s.bytes += cost;
    } else {
      const lease = change.lease;
      if (!s.leases.end(lease)) continue;
      if (lease.consumer) {
        lease.consumer.credit++;
        enqueueWaiting(topic, lease.consumer);
      }
      topic.queue.unshift(message);
      returned.set(topic, (returned.get(topic) ?? 0) + 1);
    }
  }
  for (const [topic, count] of returned) {
    const head: Message[] = [];
    for (let i = 0; i < count && topic.queue.length > 0; i++) head.push(topic.queue.shift()!);
    head.sort((a, b) => b.id - a.id);
    for (const message of head) topic.queue.unshift(message);
  }
  for (const topic of touched) {
    // Messages moved between packed and object: charged as they are now.
    s.recharge(topic);
    // A topic emptied by the batch may have been let go meanwhile (--max-topics): it holds
    // messages again. If a topic of its name took its place, they move there.
    const listed = s.topics.readmit(topic);
    if (listed !== topic) moveAll(s, topic, listed);
  }
}

/**
 * Moves what a topic let go in the batch holds again into the topic of its name that took its
 * place: the one with the lower ids (the older) first. Only queued and delayed messages: a topic
 * holding leases is never let go, and the undo ended the leases of the batch.
 */
function moveAll(s: BusState, from: Topic, to: Topic): void {
  const messages = [...from.queue];
  from.queue.clear();
  if (from.lastId < to.lastId) for (let i = messages.length - 1; i >= 0; i--) to.queue.unshift(messages[i]!);
  else for (const message of messages) to.queue.push(message);
  let cost = 0;
  for (const message of messages) cost += messageCost(message.payload.length);
  for (const delayed of [...from.delayedMessages]) {
    s.leases.endDelay(delayed);
    s.leases.delay(to, delayed.message, delayed.until);
    cost += messageCost(delayed.message.payload.length);
  }
  s.bytes -= from.bytes;
  from.bytes = 0;
  from.objects = 0;
  to.bytes += cost;
  s.bytes += cost;
  s.recharge(to);
  s.topics.settle(to);
}

/**
 * Takes a message written in the batch out of its topic: queued (the queue rebuilds the messages
 * it packed: the same message is the one with its id), or nacked with a delay in the same batch
 * (leased and nacked before the commit failed). False when the topic no longer holds it.
 */
function unwrite(s: BusState, topic: Topic, message: Message): boolean {
  const queue = topic.queue;
  const id = message.id;
  if (queue.at(queue.length - 1)?.id === id ? queue.pop() : queue.removeFirst((m) => m.id === id)) return true;
  for (const delayed of topic.delayedMessages) {
    if (delayed.message.id !== id) continue;
    s.leases.endDelay(delayed);
    return true;
  }
  return false;
}

/**
 * Brings back what a purge (`changes[at]`) dropped: its queue ahead of what was queued since, its
 * delayed messages held back until their time as before, all charged again. Into a queue that
 * holds nothing, its messages are packed again, but for those an older change of the batch still
 * refers to (put back or leased before the purge: its undo resets their delivery count on the
 * object), which stay objects at the head, with every message before them.
 */
function unpurge(s: BusState, purge: Purge, changes: Change[], at: number, returned: Map<Topic, number>): void {
  const { topic, queued, delayed } = purge;
  const queue = topic.queue;
  let objects = queued.length;
  if (queue.length === 0) {
    const referred = new Set<Message>();
    for (let i = 0; i < at; i++) {
      const change = changes[i]!;
      if ((change.kind === "removed" || change.kind === "leased") && change.topic === topic) referred.add(change.message);
    }
    objects = 0;
    for (let i = queued.length - 1; i >= 0; i--) {
      if (referred.has(queued[i]!)) {
        objects = i + 1;
        break;
      }
    }
    for (let i = objects; i < queued.length; i++) queue.push(queued[i]!);
  }
  for (let i = objects - 1; i >= 0; i--) queue.unshift(queued[i]!);
  if (objects > 0) returned.set(topic, (returned.get(topic) ?? 0) + objects);
  for (const entry of delayed) s.leases.delay(topic, entry.message, entry.until);
  let cost = 0;
  for (const message of queued) cost += messageCost(message.payload.length);
  for (const entry of delayed) cost += messageCost(entry.message.payload.length);
  topic.bytes += cost;
  s.bytes += cost;
}

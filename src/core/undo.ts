// Undoing a batch the store could not write (disk full): memory goes back to what the store
// holds, so nobody is answered for a change that was lost.

import type { BusState } from "./bus-state.ts";
import { enqueueWaiting } from "./delivery.ts";
import { type Message, messageCost } from "./message.ts";
import type { Topic } from "./topic.ts";
import type { Change } from "./uncommitted.ts";

/**
 * Undoes the batch's changes, newest first. Taken, acked, dropped and expired messages go back to
 * the head of their queue with the delivery count they had; leases granted in the batch end;
 * messages written in the batch leave (their writers were answered STORAGE; ids are not reused).
 * Nothing is dispatched: waiting consumers get the messages at the next write or grant, not in a
 * loop of failing commits.
 */
export function undoUncommitted(s: BusState, changes: Change[]): void {
  // Messages put back at the head, per topic: re-sorted at the end, since an acked message
  // did not come from the head and would otherwise land behind the ones taken after it.
  const returned = new Map<Topic, number>();
  for (let i = changes.length - 1; i >= 0; i--) {
    const change = changes[i]!;
    const { topic, message } = change;
    // A topic deleted in the batch stays deleted: the store keeps its purge and tries it again
    // (see SqliteStore), so what was taken from it before the delete does not come back either.
    if (topic.deleted) {
      if (change.kind === "leased") s.leases.end(change.lease);
      continue;
    }
    message.deliveries = change.deliveries;
    const cost = messageCost(message.payload.length);
    if (change.kind === "added") {
      const queue = topic.queue;
      // The queue rebuilds the messages it packed: the same message is the one with its id.
      const removed = queue.at(queue.length - 1)?.id === message.id ? queue.pop() : queue.removeFirst((m) => m.id === message.id);
      if (removed) {
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
  // Messages moved between packed and object: charged as they are now.
  for (const change of changes) if (!change.topic.deleted) s.recharge(change.topic);
  // A topic emptied by the batch may have been let go meanwhile: it holds messages again.
  for (const change of changes) if (!change.topic.deleted) s.topics.readmit(change.topic);
}

// Administration of topics: purging what a topic holds and deleting topics, each drop counted
// and reported to the store like any other.

import type { BusState, DropReason } from "./bus-state.ts";
import { BusError } from "./errors.ts";
import { type Message, messageCost } from "./message.ts";
import type { Delayed, Topic } from "./topic.ts";
import { checkTopicName } from "./topic-name.ts";

/** See Bus.purge. */
export function purge(s: BusState, topicName: string): number {
  checkTopicName(topicName);
  const topic = s.topics.get(topicName);
  if (!topic) return 0;
  const queued = [...topic.queue];
  const delayed: Delayed[] = [...topic.delayedMessages];
  topic.queue.clear();
  for (const entry of delayed) s.leases.endDelay(entry);
  const purged = delayed.length > 0 ? [...queued, ...delayed.map((entry) => entry.message)] : queued;
  dropAll(s, topic, purged, "purge");
  // Undone, like a take, if its commit fails: the store forgets the purge, the messages come back.
  s.uncommitted.recordPurge(topic, queued, delayed);
  s.recharge(topic);
  s.topics.settle(topic);
  return purged.length;
}

/** See Bus.deleteTopic. */
export function deleteTopic(s: BusState, topicName: string): number | undefined {
  checkTopicName(topicName);
  const topic = s.topics.get(topicName);
  if (!topic) return undefined;
  checkUnused(topic);
  const dropped = [...topic.queue];
  topic.queue.clear();
  for (const delayed of [...topic.delayedMessages]) {
    s.leases.endDelay(delayed);
    dropped.push(delayed.message);
  }
  // No credit goes back: a consumer still holding leases here has stopped consuming (a topic in
  // use is never deleted).
  for (const lease of [...topic.leased.values()]) {
    s.leases.end(lease);
    dropped.push(lease.message);
  }
  dropAll(s, topic, dropped, "delete");
  s.uncommitted.recordDelete(topic);
  s.recharge(topic);
  s.topics.remove(topic);
  return dropped.length;
}

/** See Bus.deleteTopics. */
export function deleteTopics(s: BusState, topicNames: string[]): number {
  for (const name of topicNames) checkTopicName(name);
  for (const name of topicNames) {
    const topic = s.topics.get(name);
    if (topic) checkUnused(topic);
  }
  let deleted = 0;
  for (const name of new Set(topicNames)) if (deleteTopic(s, name) !== undefined) deleted++;
  return deleted;
}

function checkUnused(topic: Topic): void {
  const subscribers = topic.subscriberCount;
  const consumers = topic.consumerCount;
  if (subscribers === 0 && consumers === 0) return;
  const who = [
    subscribers ? `${subscribers} subscriber${subscribers === 1 ? "" : "s"}` : "",
    consumers ? `${consumers} consumer${consumers === 1 ? "" : "s"}` : "",
  ];
  throw new BusError("BAD_REQUEST", `topic ${topic.name} is in use (${who.filter(Boolean).join(", ")}): it can be deleted once they leave`);
}

/** Forgets messages a purge or delete took out of a topic, and counts them as drops. */
function dropAll(s: BusState, topic: Topic, messages: Message[], reason: DropReason): void {
  for (const message of messages) {
    const cost = messageCost(message.payload.length);
    topic.bytes -= cost;
    s.bytes -= cost;
  }
  // The whole topic at once when nothing of it is left (leases survive a purge). A delete is kept
  // by the store even if its commit fails (it cannot be undone in memory); a purge is not.
  if (reason === "delete") s.store.deleted(topic.name);
  else if (topic.leased.size === 0) s.store.purged(topic.name);
  else for (const message of messages) s.store.removed(topic.name, message.id);
  if (messages.length > 0) s.reportDrop(topic, reason, messages.length);
  // Delayed entries stay in their heap until due (skipped then); compacted like lease expiries.
  s.leases.compactReleases();
}

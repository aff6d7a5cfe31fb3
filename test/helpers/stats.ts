// A topic's counters as the server reports them (STATS topic over RESP), for tests that wait on them.

import { RedisClient } from "bun";

export async function topicStats(port: number, topic: string): Promise<Record<string, number>> {
  const redis = new RedisClient(`redis://127.0.0.1:${port}`);
  try {
    return (await redis.send("STATS", [topic])) as Record<string, number>;
  } finally {
    redis.close();
  }
}

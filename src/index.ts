// The library's public exports: the engine, the store contract, the codec and the client.

export { Bus, DEFAULT_LIMITS, type BusLimits, type BusOptions, type OverflowPolicy } from "./core/bus.ts";
export { BusError, type ErrorCode } from "./core/errors.ts";
export type { Message } from "./core/message.ts";
export type { Consumer, Subscriber } from "./core/topic.ts";
export { isTopicName } from "./core/topic-name.ts";
export { MemoryStore, type Store, type StoredTopic } from "./core/store.ts";
export { RespParser } from "./protocol/resp-parser.ts";
export { RespWriter, encodeCommand } from "./protocol/resp-writer.ts";
export { RespReader } from "./protocol/resp-reader.ts";
export { resolveConfig, type Config } from "./config.ts";

// The library's public exports (`import { Bus } from "msgbus"`): the engine in-process, its store
// contract and the durable store, the message envelope, the RESP codecs, and the server to embed.
// The typed client is the other entry point: `import { connect } from "msgbus/client"`.

export {
  Bus,
  DEFAULT_LIMITS,
  DEFAULT_PEEK,
  MAX_PEEK,
  type BusEvents,
  type BusLimits,
  type BusOptions,
  type BusTotals,
  type DropReason,
  type OverflowPolicy,
  type TakeOptions,
} from "./core/bus.ts";
export { BusError, isBusError, type ErrorCode } from "./core/errors.ts";
export type { Message, Origin } from "./core/message.ts";
export type { Consumer, Subscriber } from "./core/topic.ts";
export { checkTopicName, isTopicName } from "./core/topic-name.ts";
export { MemoryStore, type Store, type StoredTopic } from "./core/store.ts";
export { openSqliteStore, type SqliteStoreOptions } from "./store/sqlite.ts";
export { decodeEnvelope, encodeEnvelope, toEnvelope, type Envelope } from "./protocol/envelope.ts";
export { RespParser } from "./protocol/resp-parser.ts";
export { RespWriter, encodeCommand } from "./protocol/resp-writer.ts";
export { RespReader } from "./protocol/resp-reader.ts";
export { resolveConfig, type Config } from "./config.ts";
export { startServer, type RunningServer } from "./server/index.ts";

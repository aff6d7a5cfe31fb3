// The client library's public exports (`import { connect } from "msgbus/client"`): one typed Client
// over tcp://, tls://, http(s):// or ws(s)://, and the error it fails with.

export {
  connect,
  type Client,
  type ConnectOptions,
  type ConsumeOptions,
  type GetOptions,
  type PeekOptions,
  type PingResult,
  type ReceivedMessage,
  type ServerStats,
  type Stream,
  type SubscribeOptions,
  type TlsOptions,
  type TopicStats,
  type WriteResult,
} from "./client.ts";
export { BusError, isBusError, type ErrorCode } from "../core/errors.ts";

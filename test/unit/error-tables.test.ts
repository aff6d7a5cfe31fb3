// The error tables: one list of codes in core, one wire table per transport, and the inverses the
// clients read replies with, derived from those tables.

import { describe, expect, test } from "bun:test";
import { BusError, ERROR_CODES, isErrorCode } from "../../src/core/errors.ts";
import { HTTP_STATUS, codeOfHttpStatus } from "../../src/protocol/http-status.ts";
import { RESP_PREFIX, codeOfRespPrefix, respError } from "../../src/protocol/resp-errors.ts";
import { RespErrorValue } from "../../src/protocol/resp-reader.ts";
import { replyError } from "../../src/client/tcp.ts";
import { statusError } from "../../src/client/http.ts";

describe("RESP", () => {
  test("every code's reply word reads back as that code, and no two codes share a word", () => {
    for (const code of ERROR_CODES) expect(codeOfRespPrefix(RESP_PREFIX[code])).toBe(code);
    expect(new Set(Object.values(RESP_PREFIX)).size).toBe(ERROR_CODES.length);
  });

  test("Redis's own words read as their codes; an unknown word is no code", () => {
    expect(codeOfRespPrefix("WRONGPASS")).toBe("UNAUTHORIZED");
    expect(codeOfRespPrefix("NOPROTO")).toBe("BAD_REQUEST");
    expect(codeOfRespPrefix("WRONGTYPE")).toBeUndefined();
  });

  test("a BusError is written as its word and message, and the client reads it back", () => {
    const line = respError(new BusError("TOPIC_FULL", "topic jobs is full"));
    expect(line).toBe("TOPICFULL topic jobs is full");
    const back = replyError(new RespErrorValue(line));
    expect([back.code, back.message]).toEqual(["TOPIC_FULL", "topic jobs is full"]);
  });

  test("the client tells a missing token from a wrong one by the reply's word", () => {
    expect(replyError(new RespErrorValue("NOAUTH Authentication required.")).message).toMatch(/requires a token/);
    const wrong = replyError(new RespErrorValue("WRONGPASS invalid username-password pair or user is disabled."));
    expect([wrong.code, wrong.message]).toEqual(["UNAUTHORIZED", "the server refused the token"]);
    const other = replyError(new RespErrorValue("WRONGTYPE whatever"));
    expect([other.code, other.message]).toEqual(["BAD_REQUEST", "WRONGTYPE whatever"]);
  });
});

describe("HTTP", () => {
  test("a status alone means the general code of those that share it", () => {
    expect(codeOfHttpStatus(400)).toBe("BAD_REQUEST");
    expect(codeOfHttpStatus(404)).toBe("NOT_FOUND");
    expect(codeOfHttpStatus(503)).toBe("UNAVAILABLE");
    expect(codeOfHttpStatus(507)).toBe("BUS_FULL");
    expect(codeOfHttpStatus(405)).toBe("BAD_REQUEST");
    expect(codeOfHttpStatus(500)).toBe("UNAVAILABLE");
    expect(codeOfHttpStatus(502)).toBe("UNAVAILABLE");
    for (const code of ERROR_CODES) expect(HTTP_STATUS[codeOfHttpStatus(HTTP_STATUS[code])]).toBe(HTTP_STATUS[code]);
  });

  test("the client believes the body's code before the status", () => {
    expect(statusError(404, "not leased", "NO_LEASE").code).toBe("NO_LEASE");
    expect(statusError(507, "disk full", "STORAGE").code).toBe("STORAGE");
    expect(statusError(404, "gone", "SOMETHING_ELSE").code).toBe("NOT_FOUND");
    expect(statusError(401, undefined).message).toMatch(/requires a token/);
    expect(isErrorCode("NO_LEASE")).toBe(true);
    expect(isErrorCode("INTERNAL")).toBe(false);
  });
});

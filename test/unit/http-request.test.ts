// Reading an HTTP request's target: the path and query routing sees, whatever form Bun's req.url has.

import { describe, expect, test } from "bun:test";
import { requestTarget } from "../../src/server/http-request.ts";

describe("requestTarget", () => {
  test.each([
    ["a request with a Host", "http://127.0.0.1:6553/jobs?wait=5s", "/jobs", "wait=5s"],
    ["an IPv6 host", "http://[::1]:6553/_/health", "/_/health", ""],
    ["HTTPS", "https://bus.example/jobs/7/ack", "/jobs/7/ack", ""],
    ["no Host (HTTP/1.0): the bare target", "/_/health", "/_/health", ""],
    ["no Host, a topic", "/jobs?json", "/jobs", "json"],
    ["no Host, a double slash is a path", "//jobs/1/ack", "//jobs/1/ack", ""],
    ["no Host, the root", "/", "/", ""],
    ["an authority and no path", "http://host?x=1", "/", "x=1"],
    ["OPTIONS *", "*", "*", ""],
  ])("%s", (_, url, path, query) => {
    expect(requestTarget(url)).toEqual({ path, query });
  });
});

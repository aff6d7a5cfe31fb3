// Free loopback ports for tests: ask the kernel for one, then let it go. A port is never handed
// out twice by this process, so two servers started in one test cannot collide with each other.

const handedOut = new Set<number>();

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  for (let attempt = 0; attempt < 20; attempt++) {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = listener.port;
    listener.stop(true);
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error("freePort: the kernel kept returning ports already handed out");
}

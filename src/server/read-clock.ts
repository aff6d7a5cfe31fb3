// The bus's clock in a server: Date.now(), read at most once for the commands of one TCP read. A
// read of 500 pipelined PUBLISHes was 500 clock reads (clock_gettime was ~5% of the server's CPU
// in fan-out to one subscriber); now its writes all get the time the first of them asked for,
// which is when the read was being run. Outside a read (timers, HTTP, WebSocket, work deferred
// to a microtask) every call reads the clock, as before.

export class ReadClock {
  private inRead = false;
  /** The time read for the current read; -1: not read yet. */
  private time = -1;

  /** The time now: within a read, the one read first for it. The bus's `now`. */
  readonly now = (): number => {
    if (!this.inRead) return Date.now();
    if (this.time < 0) this.time = Date.now();
    return this.time;
  };

  /** The commands of a read start running; false when a read is already running (nothing to end then). */
  begin(): boolean {
    if (this.inRead) return false;
    this.inRead = true;
    this.time = -1;
    return true;
  }

  /** The read's commands ran: the next call reads the clock again. */
  end(): void {
    this.inRead = false;
  }
}

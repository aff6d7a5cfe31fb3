// `serve` catches SIGTERM/SIGINT from its first moment: a supervisor that stops a server it has
// just started must get a graceful exit 0, not a kill, even while modules are still loading.

let first: string | undefined;
let listener: ((signal: string) => void) | undefined;
let catching = false;

/** Starts catching the stop signals; `serve` later takes them over with onStopSignal. */
export function catchStopSignals(): void {
  if (catching) return;
  catching = true;
  const caught = (signal: string) => {
    if (listener) listener(signal);
    else first ??= signal;
  };
  process.on("SIGTERM", () => caught("SIGTERM"));
  process.on("SIGINT", () => caught("SIGINT"));
}

/** Calls `handle` for every stop signal from now on, at once for one that came before. */
export function onStopSignal(handle: (signal: string) => void): void {
  listener = handle;
  if (first) handle(first);
}

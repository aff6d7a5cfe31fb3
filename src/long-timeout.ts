// setTimeout for any duration: Node and Bun fire timers longer than 2^31-1 ms after 1 ms (with a
// TimeoutOverflowWarning on stderr). Long waits are cut into steps and the timer re-armed.

const MAX_STEP_MS = 2 ** 31 - 1;

export interface LongTimeout {
  clear(): void;
}

/** Calls `fn` once after `ms` milliseconds (any finite, non-negative value), unless cleared first. */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cleared = false;
  const due = Date.now() + ms;
  const arm = (left: number) => {
    timer = setTimeout(
      () => {
        const remaining = due - Date.now();
        if (cleared) return;
        if (remaining > 0 && left > MAX_STEP_MS) arm(remaining);
        else fn();
      },
      Math.min(Math.max(0, left), MAX_STEP_MS),
    );
  };
  arm(ms);
  return {
    clear() {
      cleared = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

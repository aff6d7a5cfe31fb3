// Glob patterns (`*` any run of characters, `?` one character), matched in linear time.
// User patterns (CONFIG GET, ACL topic lists) are never compiled to a backtracking RegExp.

/**
 * Whether `text` matches `pattern`. Greedy with one backtrack point (the last `*`): each
 * character of `text` is visited a bounded number of times, so the cost is O(|pattern| x |text|)
 * at worst and no pattern can stall the server.
 */
export function globMatch(pattern: string, text: string, ignoreCase = false): boolean {
  if (ignoreCase) {
    pattern = pattern.toLowerCase();
    text = text.toLowerCase();
  }
  let p = 0;
  let t = 0;
  let star = -1; // pattern index just after the last `*` seen
  let resume = 0; // text index that `*` is currently standing for up to
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === "*") {
      star = ++p;
      resume = t;
    } else if (pc !== undefined && (pc === "?" || pc === text[t])) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === "*") p++;
  return p === pattern.length;
}

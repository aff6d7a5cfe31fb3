// Rate history kept in the page: each poll of /_/topics turns the topics' published and consumed
// counters into writes/s and takes/s since the previous poll, and keeps the last few minutes.

const SVG = "http://www.w3.org/2000/svg";
/** Samples kept per topic: three minutes at one poll a second. */
export const HISTORY = 180;
/** The narrowest time axis: a young history fills the line as it grows instead of a sliver at its end. */
const MIN_WINDOW = 30;

interface Series {
  writes: number[];
  takes: number[];
  published: number;
  consumed: number;
  at: number;
}

export class RateHistory {
  private readonly topics = new Map<string, Series>();

  /** One poll's counters for a topic; returns the rates since the last one (the server's own the first time). */
  record(name: string, published: number, consumed: number, at: number, first: { rateIn: number; rateOut: number }): Series {
    let series = this.topics.get(name);
    if (!series) {
      series = { writes: [first.rateIn], takes: [first.rateOut], published, consumed, at };
      this.topics.set(name, series);
      return series;
    }
    const seconds = Math.max(0.001, (at - series.at) / 1000);
    // Counters restart when a topic is deleted and comes back: a negative delta is a new start.
    series.writes.push(Math.max(0, published - series.published) / seconds);
    series.takes.push(Math.max(0, consumed - series.consumed) / seconds);
    if (series.writes.length > HISTORY) series.writes.shift();
    if (series.takes.length > HISTORY) series.takes.shift();
    series.published = published;
    series.consumed = consumed;
    series.at = at;
    return series;
  }

  forget(name: string): void {
    this.topics.delete(name);
  }

  get(name: string): Series | undefined {
    return this.topics.get(name);
  }

  names(): string[] {
    return [...this.topics.keys()];
  }
}

/** An SVG with two lines (writes, takes) scaled to their common maximum, the newest at the right. */
export function sparkline(): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${MIN_WINDOW} 30`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  for (const kind of ["writes", "takes"]) {
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("class", kind);
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.appendChild(line);
  }
  return svg;
}

export function drawSparkline(svg: SVGSVGElement, writes: number[], takes: number[]): void {
  const max = Math.max(1, ...writes, ...takes);
  const window = Math.max(MIN_WINDOW, writes.length, takes.length);
  svg.setAttribute("viewBox", `0 0 ${window - 1} 30`);
  const points = (values: number[]) => {
    const offset = window - values.length;
    return values.map((v, i) => `${offset + i},${(29 - (v / max) * 28).toFixed(1)}`).join(" ");
  };
  const [w, t] = svg.querySelectorAll("polyline");
  w!.setAttribute("points", points(writes));
  t!.setAttribute("points", points(takes));
}

/**
 * Colours for a timing overlay: each node painted by its share of the model's time.
 */

import type { Timings } from './model';

/** Colour stops from no time (pale yellow) to the largest share (deep red). */
const STOPS: [number, number, number][] = [
  [255, 247, 214],
  [253, 174, 97],
  [215, 48, 39],
  [128, 0, 38]
];

/** The colour of a fraction between 0 and 1 on the overlay's scale. */
export function heat(fraction: number): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const scaled = t * (STOPS.length - 1);
  const low = Math.min(STOPS.length - 2, Math.floor(scaled));
  const [a, b] = [STOPS[low], STOPS[low + 1]] as [
    [number, number, number],
    [number, number, number]
  ];
  const mix = (i: 0 | 1 | 2): number => Math.round(a[i] + (b[i] - a[i]) * (scaled - low));
  return `rgb(${mix(0)},${mix(1)},${mix(2)})`;
}

/** The largest share of any node, the top of the legend's scale (at least a tiny positive). */
export function largestShare(timings: Timings): number {
  let largest = 0;
  for (const entry of Object.values(timings.nodes)) {
    largest = Math.max(largest, Number.isFinite(entry.share) ? entry.share : 0);
  }
  return largest > 0 ? largest : 1;
}

/** A node's fill under the overlay, scaled so the slowest node gets the darkest colour. */
export function nodeColour(timings: Timings, nodeName: string, largest: number): string | null {
  const entry = timings.nodes[nodeName];
  if (entry === undefined) {
    return null;
  }
  return heat(entry.share / largest);
}

export function formatShare(share: number): string {
  return `${(share * 100).toFixed(share >= 0.1 ? 1 : 2)}%`;
}

export function formatMs(ms: number): string {
  return ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toPrecision(3)} ms`;
}

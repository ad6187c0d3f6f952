// The benchmark's output: a Markdown table of the results and the one section of
// docs/benchmarks.md it replaces (between the markers below), leaving the rest of the page (the
// method, the history) as written by hand.
export const startMarker = '<!-- bench-results:start (written by bench/run.mjs; edit outside the markers) -->';
export const endMarker = '<!-- bench-results:end -->';

/** A Markdown table from a header row and data rows; `|` inside a cell is escaped. */
export function markdownTable(header, rows) {
  const line = (cells) => `| ${cells.map((cell) => String(cell ?? '').replaceAll('|', '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/**
 * `page` with the text between its start and end markers replaced by `section`; everything outside
 * the markers is kept byte for byte. Throws when the markers are missing, repeated or out of order,
 * rather than guessing where the results go.
 */
export function replaceResults(page, section) {
  const start = page.indexOf(startMarker);
  const end = page.indexOf(endMarker);
  if (start === -1 || end === -1) throw new Error(`the page has no results section: add the lines\n${startMarker}\n${endMarker}`);
  if (page.indexOf(startMarker, start + 1) !== -1 || page.indexOf(endMarker, end + 1) !== -1) throw new Error('the page has more than one results section');
  if (end < start) throw new Error('the results end marker comes before the start marker');
  return `${page.slice(0, start + startMarker.length)}\n${section.trim()}\n${page.slice(end)}`;
}

/**
 * Least-squares slope of `points` ({ x, y }) and its standard error (how far the slope may be off
 * given the scatter around the line; undefined with fewer than three points); undefined with fewer
 * than two distinct x.
 */
export function fitSlope(points) {
  const value = slope(points);
  if (value === undefined) return undefined;
  const count = points.length;
  if (count < 3) return { slope: value, error: undefined };
  const meanX = points.reduce((sum, point) => sum + point.x, 0) / count;
  const meanY = points.reduce((sum, point) => sum + point.y, 0) / count;
  let variance = 0;
  let residuals = 0;
  for (const { x, y } of points) {
    variance += (x - meanX) ** 2;
    residuals += (y - (meanY + value * (x - meanX))) ** 2;
  }
  return { slope: value, error: Math.sqrt(residuals / (count - 2) / variance) };
}

/** Least-squares slope of `points` ({ x, y }); undefined with fewer than two distinct x. */
export function slope(points) {
  const count = points.length;
  if (count < 2) return undefined;
  const meanX = points.reduce((sum, point) => sum + point.x, 0) / count;
  const meanY = points.reduce((sum, point) => sum + point.y, 0) / count;
  let covariance = 0;
  let variance = 0;
  for (const { x, y } of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return variance === 0 ? undefined : covariance / variance;
}

/**
 * RSS growth between two memory readings (bench/memory-probe.mjs) without the growth of V8's young
 * generation. Its semi-spaces grow once, up to 16 MB each, when a process first allocates fast,
 * whatever the number of streams or connections that caused it, and V8 shrinks them again when
 * the process idles. Counted per stream or per connection, that growth gave the process whose
 * young generation happened to be small at the first reading up to 12 kB more per held stream
 * and 5.7 kB more per idle connection (ADR 0029). What is taken out is the young generation's
 * *resident* growth (`newSpaceResident`, V8's physical size of the space), not its size: RSS counts
 * only pages touched, and a young generation grown from 4 to 32 MB had only 25 to 28 MB of its
 * pages resident, so taking out the size took 0.6 to 1 kB per connection too much from the process
 * that grew it (ADR 0036). Processes without the figure (nginx) count all.
 */
export function rssGrowth(before, after) {
  const young = (reading) => reading.newSpaceResident ?? reading.newSpace ?? 0;
  return after.rss - before.rss - (young(after) - young(before));
}

/**
 * The growth of V8's committed heap, its young generation's size left out as in rssGrowth; beside
 * the heap used, it tells slack in V8's pages from memory outside the heap. Undefined without it.
 */
export function heapTotalGrowth(before, after) {
  if (after.heapTotal === undefined || before.heapTotal === undefined) return undefined;
  return after.heapTotal - before.heapTotal - ((after.newSpace ?? 0) - (before.newSpace ?? 0));
}

/** The young generation's two readings, kept in the raw results: its size and its resident pages. */
export function youngGeneration(before, after) {
  return { before: before.newSpace, after: after.newSpace, residentBefore: before.newSpaceResident, residentAfter: after.newSpaceResident };
}

/**
 * The median over rounds of as[i] − bs[i] (two targets' figures of one round each), with the
 * lowest and highest and the number of rounds: how the bench and compare-builds judge added
 * latency, since the machine's state moves both figures of a round together (decision 0027).
 */
export function perRoundDifference(as, bs) {
  const differences = as.map((value, round) => value - bs[round]);
  const sorted = [...differences].sort((a, b) => a - b);
  return { difference: sorted[Math.floor(sorted.length / 2)], lowest: sorted[0], highest: sorted[sorted.length - 1], rounds: sorted.length };
}

/**
 * The nearest-rank percentile: the smallest value that at least `fraction` of the values do not
 * exceed. With fewer than 1 / (1 − fraction) values it is the largest (a p99 of 20 rounds is their
 * maximum, which is why the push fan-out measures 100).
 */
export function percentile(values, fraction) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))];
}

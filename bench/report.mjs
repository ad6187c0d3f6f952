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

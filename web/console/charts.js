// Time-series charts on uPlot. uPlot draws on a canvas and builds its legend with DOM methods (no
// HTML strings), so it runs under the page's Trusted Types policy; its width follows the
// container, so a chart fits a phone as well as a monitor.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed'];

/**
 * One chart: `x` is milliseconds since the epoch, `series` a list of `{ label, values }` with one
 * value (or null for a gap) per x.
 */
export function TimeChart({ title, x, series, height = 180, id }) {
  const container = useRef(null);
  const plot = useRef(null);
  const shape = series.map((line) => line.label).join('|');

  useEffect(() => {
    const element = container.current;
    if (!element) return undefined;
    const options = {
      width: Math.max(240, element.clientWidth),
      height,
      series: [{}, ...series.map((line, index) => ({ label: line.label, stroke: palette[index % palette.length], width: 2, spanGaps: false, points: { show: true, size: 4 } }))],
      axes: [{}, { size: 56 }],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    plot.current = new uPlot(options, [x.map((ms) => ms / 1000), ...series.map((line) => line.values)], element);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(240, element.clientWidth), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape, height]);

  useEffect(() => {
    plot.current?.setData([x.map((ms) => ms / 1000), ...series.map((line) => line.values)]);
  }, [x, series]);

  return html`<figure class="chart" id=${id}>
    <figcaption>${title}</figcaption>
    <div class="chart-canvas" ref=${container}></div>
  </figure>`;
}

// A usage chart: one series of buckets over time, drawn by uPlot as bars, each from its bucket's
// start to its end. Colours come from the page's CSS variables when the chart is built, and the
// chart is rebuilt when the colour scheme changes, so it follows dark mode like the page.
//
// New data for the same chart (a live refresh) goes through setData: no flicker, and the chart
// keeps its DOM node.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartProps {
  title: string;
  // Bucket starts in seconds since the epoch, and one value per bucket.
  times: number[];
  values: number[];
  // The bucket length in seconds: the last bar ends one bucket after the last start.
  step: number;
  format: (value: number) => string;
  // Ticks only at whole numbers (counts).
  integer?: boolean;
  // The CSS variable holding the series colour.
  colorVar?: string;
  height?: number;
  // A sentence for screen readers: uPlot draws on a canvas.
  summary: string;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

const darkQuery = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;

function useColorScheme(): string {
  const [scheme, setScheme] = useState(darkQuery?.matches ? 'dark' : 'light');
  useEffect(() => {
    if (!darkQuery) return;
    const onChange = () => setScheme(darkQuery.matches ? 'dark' : 'light');
    darkQuery.addEventListener('change', onChange);
    return () => darkQuery.removeEventListener('change', onChange);
  }, []);
  return scheme;
}

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const INTEGER_STEPS = [
  1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7, 1e8, 1e9,
];

const readoutTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// uPlot's own legend repeats the caption; a one-line readout of the bucket under the cursor says
// the same in less room.
function buildOptions(props: ChartProps, width: number, readout: () => HTMLElement | null): uPlot.Options {
  const text = cssVar('--text-muted', '#667085');
  const grid = cssVar('--grid', 'rgba(127,127,127,0.2)');
  const color = cssVar(props.colorVar ?? '--chart-1', '#3b6fd8');
  const format = props.format;
  const step = props.step;
  const series: uPlot.Series = {
    label: props.title,
    stroke: color,
    fill: color,
    width: 0,
    points: { show: false },
    paths: uPlot.paths.bars!({ size: [0.8, 48, 1], align: 1 }),
    value: (_u, v) => (v === null || v === undefined ? '—' : format(v)),
  };
  const yAxis: uPlot.Axis = {
    stroke: text,
    font: FONT,
    grid: { stroke: grid, width: 1 },
    ticks: { show: false },
    values: (_u, splits) => splits.map((v) => format(v)),
    size: (_u, values) => {
      const longest = Math.max(3, ...(values ?? []).map((v) => String(v).length));
      return Math.ceil(longest * 7 + 18);
    },
  };
  if (props.integer) yAxis.incrs = INTEGER_STEPS;
  return {
    width,
    height: props.height ?? 180,
    series: [{ value: (_u, t) => (t === null ? '—' : new Date(t * 1000).toLocaleString()) }, series],
    scales: {
      // Bars start at their bucket's start (align 1): the axis runs to the end of the last bucket.
      x: { time: true, range: (_u, min, max) => [min, max + step] },
      // Start at zero; a flat zero series still gets an axis to 1.
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { stroke: text, font: FONT, grid: { show: false }, ticks: { stroke: grid, width: 1, size: 4 } },
      yAxis,
    ],
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    legend: { show: false },
    hooks: {
      setCursor: [
        (u) => {
          const el = readout();
          if (!el) return;
          const i = u.cursor.idx;
          const t = i === null || i === undefined ? undefined : u.data[0][i];
          const v = i === null || i === undefined ? undefined : u.data[1]?.[i];
          el.textContent =
            t === undefined || v === undefined || v === null
              ? ''
              : `${readoutTime.format(new Date(t * 1000))}: ${format(v)}`;
        },
      ],
    },
  };
}

export function Chart(props: ChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const readout = useRef<HTMLSpanElement>(null);
  const plot = useRef<uPlot | null>(null);
  const scheme = useColorScheme();
  const propsRef = useRef(props);
  propsRef.current = props;
  const data: uPlot.AlignedData = [props.times, props.values];
  const dataKey = `${props.times.join(',')}|${props.values.join(',')}`;

  // (Re)build when the chart's look changes; live data goes through setData below.
  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const chart = new uPlot(
      buildOptions(propsRef.current, Math.max(200, el.clientWidth), () => readout.current),
      [propsRef.current.times, propsRef.current.values],
      el,
    );
    plot.current = chart;
    const observer = new ResizeObserver(() => {
      const width = Math.max(200, el.clientWidth);
      if (width !== chart.width) chart.setSize({ width, height: propsRef.current.height ?? 180 });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [scheme, props.step, props.title, props.height, props.integer]);

  useEffect(() => {
    plot.current?.setData(data);
    // dataKey stands for the data: a new array with the same numbers is no change.
  }, [dataKey]);

  return (
    <figure class="chart">
      <figcaption>
        {props.title}
        {/* Written by the cursor hook, not by Preact. */}
        <span ref={readout} class="chart-readout" aria-hidden="true" />
      </figcaption>
      <div ref={container} class="chart-canvas" role="img" aria-label={props.summary} />
    </figure>
  );
}

// Bucket start times (RFC 3339) as uPlot's x values: seconds since the epoch.
export function toSeconds(rfc3339: string): number {
  return new Date(rfc3339).getTime() / 1000;
}

/* Trackflow UI: the few interactive bits of server-rendered pages. Charts are plotly.js. */
(function () {
  "use strict";

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  /** Page data from a <script type="application/json"> block (no inline script runs). */
  function pageData(id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  }

  /** Plotly reads <b>, <a href>, ... inside strings: hand it store values as plain text. */
  function plain(text) {
    return String(text === null || text === undefined ? "" : text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
  }

  function short(text) {
    return text.length > 24 ? text.slice(0, 23) + "…" : text;
  }

  const PLOT_CONFIG = {
    responsive: true,
    displaylogo: false,
    modeBarButtonsToRemove: ["lasso2d", "select2d", "toggleSpikelines"],
  };

  function baseLayout(extra) {
    return Object.assign(
      {
        margin: { l: 56, r: 16, t: 36, b: 44 },
        font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
        paper_bgcolor: "#ffffff",
        plot_bgcolor: "#ffffff",
        hovermode: "closest",
        xaxis: { gridcolor: "#eceef3", zeroline: false },
        yaxis: { gridcolor: "#eceef3", zeroline: false },
      },
      extra || {}
    );
  }

  function plotly() {
    return window.Plotly || null;
  }

  function xTitle(axis) {
    return axis === "time" ? "time" : "step";
  }

  function xAxis(axis, steps) {
    const spec = {
      title: { text: xTitle(axis) },
      gridcolor: "#eceef3",
      zeroline: false,
      type: axis === "time" ? "date" : "linear",
    };
    // steps are integers: no 0.5 ticks on short histories
    const last = steps && steps.length ? Math.max.apply(null, steps) : 0;
    if (axis === "step" && last <= 12) spec.dtick = 1;
    return spec;
  }

  function lineMode(points) {
    return points > 200 ? "lines" : "lines+markers";
  }

  /** Calls `draw(value)` now and whenever an x-axis radio (name="xaxis") changes. */
  function onAxisChange(draw) {
    const radios = $$('input[name="xaxis"]');
    radios.forEach((radio) =>
      radio.addEventListener("change", () => {
        if (radio.checked) draw(radio.value);
      })
    );
    const checked = radios.find((radio) => radio.checked);
    draw(checked ? checked.value : "step");
  }

  // ----------------------------------------------------------------- experiment page: runs table
  function initRunsTable() {
    const table = document.getElementById("runs-table");
    if (!table) return;
    const rows = $$("tbody tr[data-id]", table);
    const byId = new Map(rows.map((row) => [row.dataset.id, row]));
    const children = new Map();
    rows.forEach((row) => {
      const parent = row.dataset.parent;
      if (!parent) return;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(row);
    });

    function setExpanded(id, open) {
      const row = byId.get(id);
      const button = row ? $("button.toggle", row) : null;
      if (button) button.setAttribute("aria-expanded", String(open));
      (children.get(id) || []).forEach((child) => {
        child.classList.toggle("collapsed-row", !open);
        if (!open) setExpanded(child.dataset.id, false);
      });
    }

    table.addEventListener("click", (event) => {
      const button = event.target.closest("button.toggle");
      if (!button) return;
      setExpanded(button.dataset.toggle, button.getAttribute("aria-expanded") !== "true");
    });
    const expandAll = document.getElementById("expand-all");
    if (expandAll)
      expandAll.addEventListener("click", () => children.forEach((_, id) => setExpanded(id, true)));
    const collapseAll = document.getElementById("collapse-all");
    if (collapseAll)
      collapseAll.addEventListener("click", () =>
        rows.filter((row) => !row.dataset.parent).forEach((row) => setExpanded(row.dataset.id, false))
      );

    initSelection(table);
    initColumns(table);
    const size = document.getElementById("page-size");
    if (size) size.addEventListener("change", () => size.form.submit());
  }

  function initSelection(table) {
    const boxes = $$('input[name="runs"]', table);
    const all = document.getElementById("select-all");
    const button = document.getElementById("compare-button");
    const count = document.getElementById("selected-count");
    function update() {
      const selected = boxes.filter((box) => box.checked).length;
      if (count) count.textContent = String(selected);
      if (button) button.disabled = selected < 2;
      if (all) {
        all.checked = selected > 0 && selected === boxes.length;
        all.indeterminate = selected > 0 && selected < boxes.length;
      }
    }
    boxes.forEach((box) => box.addEventListener("change", update));
    if (all)
      all.addEventListener("change", () => {
        boxes.forEach((box) => (box.checked = all.checked));
        update();
      });
    update();
  }

  function initColumns(table) {
    const menu = document.getElementById("columns-menu");
    if (!menu) return;
    const storageKey = "trackflow.columns." + menu.dataset.experiment;
    let saved = {};
    try {
      saved = JSON.parse(window.localStorage.getItem(storageKey) || "{}") || {};
    } catch (error) {
      saved = {};
    }
    const cells = new Map();
    $$("[data-col]", table).forEach((cell) => {
      const key = cell.dataset.col;
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(cell);
    });
    const boxes = $$("input[data-column]", menu);
    function show(column, visible) {
      (cells.get(column) || []).forEach((cell) => cell.classList.toggle("hidden-col", !visible));
    }
    function updateGroups() {
      $$("th[data-group]", table).forEach((th) => {
        const visible = boxes.filter(
          (box) => box.dataset.column.startsWith(th.dataset.group) && box.checked
        ).length;
        th.colSpan = Math.max(visible, 1);
        th.classList.toggle("hidden-col", visible === 0);
      });
    }
    boxes.forEach((box) => {
      const column = box.dataset.column;
      if (Object.prototype.hasOwnProperty.call(saved, column)) box.checked = Boolean(saved[column]);
      show(column, box.checked);
      box.addEventListener("change", () => {
        saved[column] = box.checked;
        show(column, box.checked);
        updateGroups();
        try {
          window.localStorage.setItem(storageKey, JSON.stringify(saved));
        } catch (error) {
          /* private mode: the choice lasts for this page only */
        }
      });
    });
    updateGroups();
    document.addEventListener("click", (event) => {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });
  }

  // ----------------------------------------------------------------- run page
  function initRunCharts() {
    const series = pageData("metric-data");
    if (!series || !plotly()) return;
    const charts = $$(".chart[data-metric]");
    onAxisChange((axis) => {
      charts.forEach((div) => {
        const key = div.dataset.metric;
        const s = series[key];
        const trace = {
          type: "scatter",
          mode: lineMode(s.value.length),
          x: s[axis],
          y: s.value,
          name: plain(key),
          line: { color: "#2f5bd3", width: 2 },
          marker: { size: 5 },
          hovertemplate: "%{x}<br>%{y}<extra></extra>",
        };
        const layout = baseLayout({
          title: { text: plain(key), x: 0.02, font: { size: 13 } },
          xaxis: xAxis(axis, s.step),
        });
        plotly().react(div, [trace], layout, PLOT_CONFIG);
      });
    });
  }

  function initArtifacts() {
    const list = document.getElementById("artifact-list");
    const preview = document.getElementById("artifact-preview");
    if (!list || !preview || document.body.dataset.page !== "run") return;

    async function load(link, target) {
      const url = new URL(link.href, window.location.href);
      url.searchParams.set("fragment", "1");
      target.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(url.toString(), { headers: { Accept: "text/html" } });
        target.innerHTML = await response.text();
      } catch (error) {
        target.textContent = "Could not load: " + error;
      } finally {
        target.removeAttribute("aria-busy");
      }
    }

    function remember(path) {
      const url = new URL(window.location.href);
      if (path) url.searchParams.set("artifact", path);
      else url.searchParams.delete("artifact");
      window.history.replaceState(null, "", url.toString() + "#artifacts");
    }

    list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-preview], a[data-dir]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      if (link.hasAttribute("data-preview")) {
        $$("li.selected", list).forEach((li) => li.classList.remove("selected"));
        link.closest("li").classList.add("selected");
        remember(link.dataset.preview);
        load(link, preview);
      } else {
        remember(link.dataset.dir);
        load(link, list);
      }
    });
  }

  // ----------------------------------------------------------------- compare page
  function initCompare() {
    const config = pageData("compare-data");
    if (!config) return;
    const onlyDiff = document.getElementById("only-diff");
    if (onlyDiff) {
      const apply = () => document.body.classList.toggle("only-diff", onlyDiff.checked);
      onlyDiff.addEventListener("change", apply);
      apply();
    }
    if (!plotly()) return;
    initHistoryOverlay(config);
    initParallel(config);
  }

  function initHistoryOverlay(config) {
    const select = document.getElementById("history-metric");
    const div = document.getElementById("history-chart");
    if (!select || !div) return;
    const cache = new Map();
    let axis = "step";

    async function histories(key) {
      if (!cache.has(key)) {
        const url = new URL(config.historyUrl, window.location.href);
        config.runIds.forEach((id) => url.searchParams.append("runs", id));
        url.searchParams.set("key", key);
        cache.set(
          key,
          fetch(url.toString()).then((response) => {
            if (!response.ok) throw new Error("HTTP " + response.status);
            return response.json();
          })
        );
      }
      return cache.get(key);
    }

    async function draw() {
      const key = select.value;
      div.setAttribute("aria-busy", "true");
      const data = await histories(key);
      const traces = config.runIds
        .map((id, i) => ({ id: id, name: config.runNames[i], s: data[id] }))
        .filter((t) => t.s && t.s.value.length)
        .map((t) => ({
          type: "scatter",
          mode: lineMode(t.s.value.length),
          name: plain(t.name),
          x: t.s[axis],
          y: t.s.value,
          hovertemplate: "%{x}<br>%{y}<extra>" + plain(t.name) + "</extra>",
        }));
      const layout = baseLayout({
        title: { text: plain(key), x: 0.02, font: { size: 13 } },
        xaxis: xAxis(axis, [].concat.apply([], traces.map((t) => (axis === "step" ? t.x : [])))),
        showlegend: true,
        legend: { orientation: "h", y: -0.2 },
        margin: { l: 56, r: 16, t: 36, b: 80 },
      });
      await plotly().react(div, traces, layout, PLOT_CONFIG);
      div.dataset.drawn = key;
      div.removeAttribute("aria-busy");
    }

    select.addEventListener("change", draw);
    onAxisChange((value) => {
      axis = value;
      draw();
    });
  }

  function initParallel(config) {
    const select = document.getElementById("parallel-metric");
    const div = document.getElementById("parallel-chart");
    const note = document.getElementById("parallel-note");
    if (!select || !div) return;
    const parallel = config.parallel;

    function dimension(label, values, numeric) {
      if (numeric) return { label: plain(label), values: values };
      const labels = values.map((v) => (v === null || v === undefined ? "—" : String(v)));
      const categories = Array.from(new Set(labels)).sort();
      return {
        label: plain(label),
        values: labels.map((v) => categories.indexOf(v)),
        tickvals: categories.map((_, i) => i),
        ticktext: categories.map(short),  // tick labels are plain text in parcoords
        range: [-0.5, Math.max(categories.length - 0.5, 0.5)],
      };
    }

    function draw() {
      const metric = select.value;
      const values = parallel.metrics[metric] || [];
      const keep = values.map((v, i) => (v === null ? -1 : i)).filter((i) => i >= 0);
      const keys = Object.keys(parallel.params);
      const varying = keys.filter((key) => {
        const seen = new Set(keep.map((i) => String(parallel.params[key].values[i])));
        return seen.size > 1;
      });
      const shown = varying.length ? varying : keys;
      const dimensions = shown.map((key) => {
        const p = parallel.params[key];
        return dimension(key, keep.map((i) => p.values[i]), p.numeric);
      });
      const metricValues = keep.map((i) => values[i]);
      dimensions.push({ label: plain(metric), values: metricValues });
      const skipped = values.length - keep.length;
      if (note)
        note.textContent =
          (skipped ? skipped + " run(s) without " + metric + " left out. " : "") +
          (varying.length < keys.length && varying.length
            ? keys.length - varying.length + " parameter(s) equal in every run hidden."
            : "");
      const trace = {
        type: "parcoords",
        dimensions: dimensions,
        line: {
          color: metricValues,
          colorscale: "Viridis",
          showscale: true,
          colorbar: { title: { text: plain(metric) } },
        },
      };
      plotly().react(div, [trace], baseLayout({ margin: { l: 150, r: 70, t: 60, b: 30 } }), PLOT_CONFIG).then(() => {
        div.dataset.drawn = metric;
      });
    }

    select.addEventListener("change", draw);
    draw();
  }

  // ----------------------------------------------------------------- scheduled series page
  function initSeries() {
    const config = pageData("series-data");
    const div = document.getElementById("series-chart");
    $$("#series-form select").forEach((select) =>
      select.addEventListener("change", () => select.form.submit())
    );
    if (!config || !div || !plotly()) return;
    const groups = new Map();
    config.points.forEach((point) => {
      const name = point.deployment || "runs";
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(point);
    });
    const traces = Array.from(groups.entries()).map(([name, points]) => ({
      type: "scatter",
      mode: lineMode(points.length),
      name: plain(name),
      x: points.map((p) => p.time),
      y: points.map((p) => p.value),
      customdata: points.map((p) => p.run_id),
      text: points.map((p) => plain(p.name + " (" + p.status + ")")),
      hovertemplate: "%{text}<br>%{x}<br>%{y}<extra></extra>",
    }));
    const layout = baseLayout({
      title: { text: plain(config.metric), x: 0.02, font: { size: 13 } },
      xaxis: { title: { text: "scheduled start" }, type: "date", gridcolor: "#eceef3", zeroline: false },
      showlegend: traces.length > 1,
    });
    plotly()
      .react(div, traces, layout, PLOT_CONFIG)
      .then(() => {
        div.dataset.drawn = config.metric;
        div.on("plotly_click", (event) => {
          const point = event.points && event.points[0];
          if (point && point.customdata)
            window.location.href = config.runUrl.replace("RUN_ID", encodeURIComponent(point.customdata));
        });
      });
  }

  /** The run page's package list: show the packages whose text contains the filter. */
  function initPackageFilter() {
    const input = $("#package-filter");
    if (!input) return;
    input.addEventListener("input", () => {
      const needle = input.value.trim().toLowerCase();
      $$("#package-list li").forEach((item) => {
        item.hidden = needle !== "" && !item.textContent.toLowerCase().includes(needle);
      });
    });
  }

  function init() {
    initPackageFilter();
    initRunsTable();
    initRunCharts();
    initArtifacts();
    initCompare();
    initSeries();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();

/* OneLoop console behaviour. The content security policy allows no inline script, so all
   of it lives here: the CSRF header on htmx requests, submit-on-change selects, and the
   charts, drawn with ECharts from <script type="application/json"> data blocks. */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : null;
  }

  // Every htmx request carries the session's CSRF token (forms carry a hidden field too).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  // A select marked data-autosubmit posts its form when changed (the button is the fallback).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
      target.form.requestSubmit();
    }
  });

  var palette = ["#2f6fdf", "#e08a1e", "#1c9a6c", "#9b59b6", "#d64545", "#2bb5c8", "#7a869a", "#c9a227"];
  var charts = [];

  function percent(value) {
    return (Math.round(value * 1000) / 10) + "%";
  }

  function option(data) {
    var base = { color: palette, animation: false, grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true } };
    if (data.kind === "timeseries") {
      base.tooltip = { trigger: "axis" };
      base.legend = { type: "scroll", top: 0 };
      base.xAxis = { type: "time", axisLabel: { hideOverlap: true } };
      base.yAxis = { type: "value", minInterval: 1 };
      base.series = data.series.map(function (s) {
        return { name: s.name, type: "line", showSymbol: false, data: s.points };
      });
      return base;
    }
    var horizontal = data.kind === "hbar";
    var category = { type: "category", data: data.categories, axisLabel: { interval: 0, width: horizontal ? 170 : 90, overflow: "truncate" } };
    var value = { type: "value" };
    if (data.percent) {
      value.max = 1;
      value.axisLabel = { formatter: percent };
      base.tooltip = { trigger: "axis", valueFormatter: percent };
    } else {
      base.tooltip = { trigger: "axis" };
    }
    if (!horizontal) {
      category.axisLabel.rotate = 30;
    }
    base.xAxis = horizontal ? value : category;
    base.yAxis = horizontal ? category : value;
    base.series = data.series.map(function (s) {
      return { name: s.name, type: "bar", data: s.values, barMaxWidth: 28 };
    });
    return base;
  }

  function isEmpty(data) {
    if (data.kind === "timeseries") {
      return data.series.length === 0;
    }
    return !data.categories || data.categories.length === 0;
  }

  function draw(element) {
    if (element.getAttribute("data-drawn") === "1") {
      return;
    }
    element.setAttribute("data-drawn", "1");
    var source = document.getElementById(element.getAttribute("data-chart"));
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    if (isEmpty(data)) {
      var note = document.createElement("p");
      note.className = "chart-empty";
      note.textContent = data.empty || "—";
      element.appendChild(note);
      return;
    }
    if (typeof window.echarts === "undefined") {
      return;
    }
    var lang = document.documentElement.getAttribute("lang") === "zh-CN" ? "ZH" : "EN";
    var chart = window.echarts.init(element, null, { renderer: "canvas", locale: lang });
    chart.setOption(option(data));
    charts.push(chart);
  }

  function drawAll(root) {
    root.querySelectorAll("[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
  });
  document.addEventListener("htmx:load", function (event) {
    drawAll(event.target);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
})();

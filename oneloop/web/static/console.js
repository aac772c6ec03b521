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
    if (data.kind === "funnel") {
      return funnelOption(base, data);
    }
    if (data.kind === "sparkline") {  // one small line, no axes: a table cell's trend
      base.grid = { left: 2, right: 2, top: 4, bottom: 2 };
      base.tooltip = { trigger: "axis", confine: true };
      base.xAxis = { type: "time", show: false };
      base.yAxis = { type: "value", show: false, min: 0 };
      base.series = [{ name: data.name, type: "line", showSymbol: false, data: data.points, lineStyle: { width: 1.5 }, areaStyle: { opacity: 0.15 } }];
      return base;
    }
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
    if (data.legend) {
      base.legend = { type: "scroll", top: 0 };
    }
    return base;
  }

  // A funnel of stages (the sales reports' lead funnel): each stage's count, widest first.
  // The labels are ECharts template strings, not functions: the data stays data.
  function funnelOption(base, data) {
    base.tooltip = { trigger: "item", formatter: "{b}: {c}" };
    base.series = [{
      type: "funnel",
      sort: "none",
      left: "8%",
      width: "84%",
      top: 8,
      bottom: 8,
      minSize: "12%",
      gap: 2,
      label: { show: true, position: "inside", formatter: "{b}  {c}" },
      data: data.stages.map(function (s) { return { name: s.name, value: s.value }; })
    }];
    return base;
  }

  function isEmpty(data) {
    if (data.kind === "funnel") {
      return !data.stages || !data.stages.some(function (s) { return s.value > 0; });
    }
    if (data.kind === "sparkline") {
      return !data.points || data.points.length === 0;
    }
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

/* The segment rule builder: edits the segment language's JSON document (see
   oneloop/segments/language.py) in the form's rule field, and asks the page for a size
   estimate (htmx, debounced) whenever the rule is complete. The server validates with the
   same parser as the REST API and answers errors by path (rule.and[1].op); each is shown
   beside the condition or group at the deepest matching path. Every name and value is set
   with textContent or .value, never as markup. A node the builder cannot show as a form
   (a property filter, first/last, a not around an and) stays as an editable JSON condition,
   so an existing rule survives a round trip unchanged. */
(function () {
  "use strict";

  var TRAIT_OPS = {
    number: ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "exists", "not_exists"],
    text: ["eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"],
    date: ["lt", "lte", "gt", "gte", "between", "within_last", "not_within_last", "exists", "not_exists"],
    bool: ["eq", "ne", "exists", "not_exists"],
    any: ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "contains", "starts_with",
      "within_last", "not_within_last", "exists", "not_exists"]
  };
  var SCORE_OPS = ["gte", "gt", "lte", "lt", "eq", "ne", "between"];
  var COUNT_OPS = ["gte", "lte", "eq"];
  var UNITS = ["days", "weeks", "hours", "minutes"];
  var KINDS = ["trait", "event", "tag", "score", "segment", "json"];
  var NUMBER = /^-?\d+(\.\d+)?$/;
  var MAX_DEPTH = 4;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function only(node, allowed) {
    return Object.keys(node).every(function (k) { return allowed.indexOf(k) >= 0; });
  }

  function text(value) {
    if (typeof value === "string") { return value; }
    if (typeof value === "number" || typeof value === "boolean") { return String(value); }
    return null;
  }

  function hintOf(value) {
    return typeof value === "number" ? "number" : typeof value === "boolean" ? "bool" : "text";
  }

  // A typed value from what was typed: the trait's known type first, then what the loaded
  // rule had, then a guess ("021" stays text: a leading zero is a code, not a number).
  function literal(raw, type) {
    var t = raw.trim();
    if (type === "number") { return NUMBER.test(t) ? Number(t) : t; }
    if (type === "bool") { return t === "true" ? true : t === "false" ? false : t; }
    if (type === "text" || type === "date") { return t; }
    if (NUMBER.test(t) && !/^-?0\d/.test(t)) { return Number(t); }
    if (t === "true" || t === "false") { return t === "true"; }
    return t;
  }

  function newCondition(kind) {
    switch (kind) {
      case "trait": return { type: "trait", name: "", op: "eq", value: "", value2: "", amount: "", unit: "days", hint: "" };
      case "event": return { type: "event", name: "", did: "yes", countOp: "", count: "", window: "", amount: "", unit: "days" };
      case "tag": return { type: "tag", code: "", has: "yes" };
      case "score": return { type: "score", code: "", op: "gte", value: "", value2: "" };
      case "segment": return { type: "segment", code: "", member: "yes" };
      default: return { type: "json", text: "{}" };
    }
  }

  function newGroup(op) {
    return { type: "group", op: op || "and", children: [] };
  }

  // --- the JSON document → the builder's model -------------------------------------------

  function fromAst(node) {
    var raw = { type: "json", text: JSON.stringify(node) };
    if (!isObject(node)) { return raw; }
    var keys = Object.keys(node);
    if (keys.length === 1 && (keys[0] === "and" || keys[0] === "or") && Array.isArray(node[keys[0]]) && node[keys[0]].length) {
      var group = newGroup(keys[0]);
      group.children = node[keys[0]].map(fromAst);
      return group;
    }
    if (keys.length === 1 && keys[0] === "not" && isObject(node.not)) {
      var inner = node.not;
      if (only(inner, ["or"]) && Array.isArray(inner.or) && inner.or.length) {
        var none = newGroup("none");
        none.children = inner.or.map(fromAst);
        return none;
      }
      if (only(inner, ["tag"]) && typeof inner.tag === "string") { return { type: "tag", code: inner.tag, has: "no" }; }
      if (only(inner, ["segment"]) && typeof inner.segment === "string") { return { type: "segment", code: inner.segment, member: "no" }; }
      return raw;
    }
    if (typeof node.trait === "string" && only(node, ["trait", "op", "value"])) { return traitFrom(node) || raw; }
    if (typeof node.event === "string" && only(node, ["event", "did", "count", "within"])) { return eventFrom(node) || raw; }
    if (typeof node.score === "string" && only(node, ["score", "op", "value"])) { return scoreFrom(node) || raw; }
    if (typeof node.tag === "string" && only(node, ["tag"])) { return { type: "tag", code: node.tag, has: "yes" }; }
    if (typeof node.segment === "string" && only(node, ["segment"])) { return { type: "segment", code: node.segment, member: "yes" }; }
    return raw;
  }

  function traitFrom(node) {
    var c = newCondition("trait");
    var v = node.value;
    c.name = node.trait;
    c.op = node.op;
    if (TRAIT_OPS.any.indexOf(c.op) < 0) { return null; }
    if (c.op === "exists" || c.op === "not_exists") { return "value" in node ? null : c; }
    if (c.op === "in" || c.op === "not_in") {
      if (!Array.isArray(v) || !v.length) { return null; }
      var texts = v.map(text);
      if (texts.some(function (t) { return t === null || t.indexOf(",") >= 0; })) { return null; }
      c.value = texts.join(", ");
      c.hint = hintOf(v[0]);
      return c;
    }
    if (c.op === "between") {
      if (!Array.isArray(v) || v.length !== 2 || text(v[0]) === null || text(v[1]) === null) { return null; }
      c.value = text(v[0]);
      c.value2 = text(v[1]);
      c.hint = hintOf(v[0]);
      return c;
    }
    if (c.op === "within_last" || c.op === "not_within_last") {
      if (!isObject(v) || !only(v, ["amount", "unit"]) || typeof v.amount !== "number") { return null; }
      c.amount = String(v.amount);
      c.unit = v.unit || "days";
      return c;
    }
    if (text(v) === null) { return null; }
    c.value = text(v);
    c.hint = hintOf(v);
    return c;
  }

  function eventFrom(node) {
    var c = newCondition("event");
    c.name = node.event;
    if ("did" in node) {
      if (typeof node.did !== "boolean") { return null; }
      c.did = node.did ? "yes" : "no";
    }
    if ("count" in node) {
      var n = node.count;
      if (!isObject(n) || !only(n, ["op", "value"]) || COUNT_OPS.indexOf(n.op) < 0 || typeof n.value !== "number") { return null; }
      c.countOp = n.op;
      c.count = String(n.value);
    }
    if ("within" in node) {
      var w = node.within;
      if (!isObject(w) || !only(w, ["amount", "unit"]) || typeof w.amount !== "number") { return null; }
      c.window = "within";
      c.amount = String(w.amount);
      c.unit = w.unit || "days";
    }
    return c;
  }

  function scoreFrom(node) {
    var c = newCondition("score");
    c.code = node.score;
    c.op = node.op;
    if (SCORE_OPS.indexOf(c.op) < 0) { return null; }
    if (c.op === "between") {
      if (!Array.isArray(node.value) || node.value.length !== 2 || typeof node.value[0] !== "number" || typeof node.value[1] !== "number") { return null; }
      c.value = String(node.value[0]);
      c.value2 = String(node.value[1]);
      return c;
    }
    if (typeof node.value !== "number") { return null; }
    c.value = String(node.value);
    return c;
  }

  // --- the model → the JSON document, with each node's path --------------------------------

  function Builder(root, data, field, estimate) {
    this.root = root;
    this.field = field;
    this.estimate = estimate;
    this.labels = data.labels || {};
    this.suggestions = data.suggestions || {};
    this.types = {};
    this.seq = 0;
    this.lastSent = null;
    var self = this;
    (this.suggestions.traits || []).forEach(function (t) { self.types[t.name] = t.type || ""; });
    this.tree = newGroup("and");
    var current = field.value.trim();
    if (current) {
      try {
        var parsed = fromAst(JSON.parse(current));
        if (parsed.type === "group") {
          this.tree = parsed;
        } else {
          this.tree.children.push(parsed);
        }
      } catch (e) {
        this.tree.children.push({ type: "json", text: current });
      }
    }
  }

  Builder.prototype.typeOf = function (c) {
    var known = this.types[c.name.trim()];
    return known || c.hint || "";
  };

  Builder.prototype.toAst = function (m, path, state) {
    var self = this;
    m.path = path;
    function need(value) {
      if (value === "" || value === null || value === undefined) {
        state.incomplete = true;
      }
      return value;
    }
    if (m.type === "group") {
      if (!m.children.length) { state.incomplete = true; }
      var key = m.op === "none" ? "or" : m.op;
      var base = m.op === "none" ? path + ".not" : path;
      var node = {};
      node[key] = m.children.map(function (c, i) { return self.toAst(c, base + "." + key + "[" + i + "]", state); });
      return m.op === "none" ? { not: node } : node;
    }
    if (m.type === "trait") {
      var type = this.typeOf(m);
      var trait = { trait: need(m.name.trim()), op: m.op };
      if (m.op === "in" || m.op === "not_in") {
        var items = m.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
        need(items.length ? "ok" : "");
        trait.value = items.map(function (s) { return literal(s, type); });
      } else if (m.op === "between") {
        trait.value = [literal(need(m.value.trim()), type), literal(need(m.value2.trim()), type)];
      } else if (m.op === "within_last" || m.op === "not_within_last") {
        trait.value = { amount: parseInt(need(m.amount.trim()), 10), unit: m.unit };
      } else if (m.op !== "exists" && m.op !== "not_exists") {
        trait.value = literal(need(m.value.trim()), type);
      }
      return trait;
    }
    if (m.type === "event") {
      var event = { event: need(m.name.trim()) };
      if (m.did === "no") {
        event.did = false;
      } else if (m.countOp) {
        event.count = { op: m.countOp, value: Number(need(m.count.trim())) };
      }
      if (m.window === "within") {
        event.within = { amount: parseInt(need(m.amount.trim()), 10), unit: m.unit };
      }
      return event;
    }
    if (m.type === "score") {
      var score = { score: need(m.code.trim()), op: m.op };
      score.value = m.op === "between"
        ? [Number(need(m.value.trim())), Number(need(m.value2.trim()))]
        : Number(need(m.value.trim()));
      return score;
    }
    if (m.type === "tag") {
      var tag = { tag: need(m.code.trim()) };
      return m.has === "no" ? { not: tag } : tag;
    }
    if (m.type === "segment") {
      var segment = { segment: need(m.code.trim()) };
      return m.member === "no" ? { not: segment } : segment;
    }
    try {
      return JSON.parse(m.text);
    } catch (e) {
      state.incomplete = true;
      state.local.push([m, this.labels.bad_json]);
      return null;
    }
  };

  // --- drawing ----------------------------------------------------------------------------

  Builder.prototype.key = function (m, prop) {
    if (!m.id) {
      this.seq += 1;
      m.id = "n" + this.seq;
    }
    return m.id + ":" + prop;
  };

  Builder.prototype.input = function (m, prop, label, attrs) {
    var self = this;
    var box = el("input", attrs || {});
    box.type = box.getAttribute("type") || "text";
    box.value = m[prop] === undefined || m[prop] === null ? "" : String(m[prop]);
    box.setAttribute("aria-label", label);
    box.setAttribute("data-key", this.key(m, prop));
    box.addEventListener("input", function () {
      m[prop] = box.value;
      self.changed(false);
    });
    return box;
  };

  // A select bound to m[prop]; onChange replaces the default (store, redraw, keep focus).
  Builder.prototype.choice = function (m, prop, options, label, onChange) {
    var self = this;
    var select = el("select", { "aria-label": label, "data-key": this.key(m, prop) });
    var known = options.map(function (o) { return o[0]; });
    if (known.indexOf(String(m[prop])) < 0) {
      options = options.concat([[String(m[prop]), String(m[prop])]]);
    }
    options.forEach(function (o) {
      var option = el("option", { value: o[0] }, o[1]);
      option.selected = o[0] === String(m[prop]);
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      if (onChange) {
        onChange(select.value);
        return;
      }
      m[prop] = select.value;
      self.changed(true, self.key(m, prop));
    });
    return select;
  };

  Builder.prototype.button = function (label, className, onClick) {
    var b = el("button", { type: "button", "class": className }, label);
    b.addEventListener("click", onClick);
    return b;
  };

  Builder.prototype.opOptions = function (ops) {
    var L = this.labels;
    return ops.map(function (op) { return [op, L["op_" + op] || op]; });
  };

  Builder.prototype.renderGroup = function (g, parent, depth) {
    var self = this;
    var L = this.labels;
    var box = el("div", { "class": "rb-group" + (parent ? "" : " rb-root"), "data-depth": String(depth) });
    g.el = box;
    var head = el("div", { "class": "rb-group-head" });
    head.appendChild(this.choice(g, "op", [["and", L.all], ["or", L.any], ["none", L.none]], L.these));
    head.appendChild(el("span", { "class": "muted" }, L.these));
    if (parent) {
      head.appendChild(this.button(L.remove_group, "link rb-remove", function () {
        parent.children.splice(parent.children.indexOf(g), 1);
        self.changed(true);
      }));
    }
    box.appendChild(head);
    var list = el("ol", { "class": "rb-children" });
    g.children.forEach(function (c) {
      var item = el("li");
      item.appendChild(c.type === "group" ? self.renderGroup(c, g, depth + 1) : self.renderCondition(c, g));
      list.appendChild(item);
    });
    box.appendChild(list);
    var actions = el("div", { "class": "rb-actions" });
    actions.appendChild(this.button("+ " + L.add_condition, "secondary small rb-add-condition", function () {
      var c = newCondition("trait");
      g.children.push(c);
      self.changed(true, self.key(c, "type"));
    }));
    if (depth < MAX_DEPTH) {
      actions.appendChild(this.button("+ " + L.add_group, "secondary small rb-add-group", function () {
        var inner = newGroup(g.op === "and" ? "or" : "and");
        var c = newCondition("trait");
        inner.children.push(c);
        g.children.push(inner);
        self.changed(true, self.key(c, "type"));
      }));
    }
    box.appendChild(actions);
    return box;
  };

  Builder.prototype.renderCondition = function (c, parent) {
    var self = this;
    var L = this.labels;
    var row = el("div", { "class": "rb-condition", "data-kind": c.type });
    c.el = row;
    var kind = this.choice(c, "type", KINDS.map(function (k) { return [k, L[k] || k]; }), L.kind, function (value) {
      var fresh = newCondition(value);
      parent.children[parent.children.indexOf(c)] = fresh;
      self.changed(true, self.key(fresh, "type"));
    });
    kind.className = "rb-kind";
    row.appendChild(kind);
    var fields = el("div", { "class": "rb-fields" });
    this["fields_" + c.type](c, fields);
    row.appendChild(fields);
    row.appendChild(this.button(L.remove, "link rb-remove", function () {
      parent.children.splice(parent.children.indexOf(c), 1);
      self.changed(true);
    }));
    return row;
  };

  Builder.prototype.fields_trait = function (c, box) {
    var self = this;
    var L = this.labels;
    var name = this.input(c, "name", L.trait_name, { list: "rb-traits", placeholder: L.trait_name, "class": "rb-name" });
    c.shownType = this.typeOf(c);
    name.addEventListener("change", function () {
      if (self.typeOf(c) !== c.shownType) {
        self.changed(true, self.key(c, "op"));
      }
    });
    box.appendChild(name);
    box.appendChild(this.choice(c, "op", this.opOptions(TRAIT_OPS[c.shownType || "any"] || TRAIT_OPS.any), L.operator));
    this.valueFields(c, box, c.op);
  };

  Builder.prototype.valueFields = function (c, box, op) {
    var L = this.labels;
    if (op === "exists" || op === "not_exists") { return; }
    if (op === "between") {
      box.appendChild(this.input(c, "value", L.from, { placeholder: L.from, "class": "rb-value" }));
      box.appendChild(this.input(c, "value2", L.to, { placeholder: L.to, "class": "rb-value" }));
    } else if (op === "within_last" || op === "not_within_last") {
      box.appendChild(this.input(c, "amount", L.amount, { type: "number", min: "1", "class": "rb-amount" }));
      box.appendChild(this.choice(c, "unit", UNITS.map(function (u) { return [u, L[u]]; }), L.unit));
    } else if (op === "in" || op === "not_in") {
      box.appendChild(this.input(c, "value", L.values_hint, { placeholder: L.values_hint, "class": "rb-value wide" }));
    } else {
      box.appendChild(this.input(c, "value", L.value, { placeholder: L.value, "class": "rb-value" }));
    }
  };

  Builder.prototype.fields_event = function (c, box) {
    var L = this.labels;
    box.appendChild(this.choice(c, "did", [["yes", L.did], ["no", L.did_not]], L.did));
    box.appendChild(this.input(c, "name", L.event_name, { list: "rb-events", placeholder: L.event_name, "class": "rb-name" }));
    if (c.did === "yes") {
      box.appendChild(this.choice(c, "countOp", [["", L.any_count], ["gte", L.at_least], ["lte", L.at_most], ["eq", L.exactly]], L.operator));
      if (c.countOp) {
        box.appendChild(this.input(c, "count", L.value, { type: "number", min: "0", "class": "rb-amount" }));
        box.appendChild(el("span", { "class": "muted" }, L.times));
      }
    }
    box.appendChild(this.choice(c, "window", [["", L.ever], ["within", L.within]], L.within));
    if (c.window === "within") {
      box.appendChild(this.input(c, "amount", L.amount, { type: "number", min: "1", "class": "rb-amount" }));
      box.appendChild(this.choice(c, "unit", UNITS.map(function (u) { return [u, L[u]]; }), L.unit));
    }
  };

  Builder.prototype.fields_tag = function (c, box) {
    var L = this.labels;
    box.appendChild(this.choice(c, "has", [["yes", L.has], ["no", L.has_not]], L.tag));
    box.appendChild(this.input(c, "code", L.tag, { list: "rb-tags", placeholder: L.tag, "class": "rb-name" }));
  };

  Builder.prototype.fields_score = function (c, box) {
    var L = this.labels;
    box.appendChild(this.input(c, "code", L.score, { list: "rb-scores", placeholder: L.score, "class": "rb-name" }));
    box.appendChild(this.choice(c, "op", this.opOptions(SCORE_OPS), L.operator));
    this.valueFields(c, box, c.op);
  };

  Builder.prototype.fields_segment = function (c, box) {
    var L = this.labels;
    box.appendChild(this.choice(c, "member", [["yes", L.is_member], ["no", L.is_not_member]], L.segment));
    box.appendChild(this.input(c, "code", L.segment, { list: "rb-segments", placeholder: L.segment, "class": "rb-name" }));
  };

  Builder.prototype.fields_json = function (c, box) {
    var self = this;
    var area = el("textarea", { rows: "3", spellcheck: "false", "aria-label": this.labels.json, "class": "rb-json", "data-key": this.key(c, "text") });
    area.value = c.text;
    area.addEventListener("input", function () {
      c.text = area.value;
      self.changed(false);
    });
    box.appendChild(area);
  };

  Builder.prototype.datalists = function () {
    var s = this.suggestions;
    var lists = [
      ["rb-traits", (s.traits || []).map(function (t) { return [t.name, t.label]; })],
      ["rb-events", (s.events || []).map(function (e) { return [e, ""]; })],
      ["rb-tags", (s.tags || []).map(function (t) { return [t.code, t.label]; })],
      ["rb-scores", (s.scores || []).map(function (t) { return [t.code, t.label]; })],
      ["rb-segments", (s.segments || []).map(function (t) { return [t.code, t.label]; })]
    ];
    var box = el("div", { hidden: "" });
    lists.forEach(function (entry) {
      var list = el("datalist", { id: entry[0] });
      entry[1].forEach(function (o) {
        var option = el("option", { value: o[0] });
        if (o[1]) { option.label = o[1]; }
        list.appendChild(option);
      });
      box.appendChild(list);
    });
    return box;
  };

  Builder.prototype.render = function () {
    this.tree.el = null;
    this.canvas.replaceChildren(this.renderGroup(this.tree, null, 0));
  };

  Builder.prototype.start = function () {
    this.root.appendChild(this.datalists());
    this.canvas = el("div", { "class": "rb-canvas" });
    this.root.appendChild(this.canvas);
    this.root.classList.add("is-ready");
    this.render();
    this.sync();
  };

  // After any edit: the field gets the document; a complete rule is estimated (debounced by
  // hx-trigger's delay), an incomplete one says what is missing instead of asking.
  Builder.prototype.changed = function (redraw, focusKey) {
    if (redraw) {
      this.render();
      if (focusKey) {
        var target = this.canvas.querySelector('[data-key="' + focusKey + '"]');
        if (target) { target.focus(); }
      }
    }
    this.sync();
  };

  Builder.prototype.hint = function (message) {
    this.lastSent = null;
    this.estimate.replaceChildren(el("p", { "class": "muted", id: "estimate-hint" }, message));
  };

  Builder.prototype.sync = function () {
    var state = { incomplete: false, local: [] };
    var ast = this.tree.children.length ? this.toAst(this.tree, "rule", state) : null;
    this.clearErrors();
    this.field.value = ast ? JSON.stringify(ast) : "";
    var self = this;
    state.local.forEach(function (pair) { self.mark(pair[0], pair[1]); });
    if (!ast) {
      this.hint(this.labels.empty);
    } else if (state.incomplete) {
      this.hint(this.labels.incomplete);
    } else if (this.field.value !== this.lastSent) {
      this.lastSent = this.field.value;
      this.estimate.dispatchEvent(new CustomEvent("rule-change"));
    }
  };

  Builder.prototype.clearErrors = function () {
    this.canvas.querySelectorAll(".rb-error").forEach(function (p) { p.remove(); });
    this.canvas.querySelectorAll(".has-error").forEach(function (n) { n.classList.remove("has-error"); });
  };

  Builder.prototype.mark = function (m, message) {
    if (!m.el) { return; }
    m.el.classList.add("has-error");
    var note = el("p", { "class": "field-error rb-error", role: "alert" }, message);
    var head = m.el.querySelector(":scope > .rb-group-head");
    if (head) {
      head.after(note);
    } else {
      m.el.appendChild(note);
    }
  };

  function covers(path, nodePath) {
    return path === nodePath || path.indexOf(nodePath + ".") === 0 || path.indexOf(nodePath + "[") === 0;
  }

  // Each error beside the deepest node whose path it falls under (the whole rule otherwise).
  Builder.prototype.showErrors = function (errors) {
    var self = this;
    var nodes = [];
    (function walk(m) {
      nodes.push(m);
      (m.children || []).forEach(walk);
    })(this.tree);
    errors.forEach(function (error) {
      var best = self.tree;
      nodes.forEach(function (m) {
        if (m.path && covers(error.path, m.path) && m.path.length > (best.path || "").length) {
          best = m;
        }
      });
      self.mark(best, error.msg);
    });
  };

  function readErrors(container) {
    var block = container.querySelector(".rule-errors-data");
    if (!block) { return []; }
    try {
      return JSON.parse(block.textContent) || [];
    } catch (e) {
      return [];
    }
  }

  var builders = [];

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-builder]").forEach(function (root) {
      var source = document.getElementById(root.getAttribute("data-builder"));
      var field = document.getElementById(root.getAttribute("data-field"));
      var estimate = document.getElementById(root.getAttribute("data-estimate"));
      if (!source || !field || !estimate) { return; }
      var data = JSON.parse(source.textContent);
      var builder = new Builder(root, data, field, estimate);
      builder.start();
      builder.showErrors(data.errors || []);
      builders.push(builder);
    });
  });

  // A fragment answering 422 carries the errors to show: swap it like a 200.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (event.detail.xhr.status === 422 && target && target.hasAttribute("data-swap-errors")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    builders.forEach(function (builder) {
      if (event.detail.target === builder.estimate) {
        builder.clearErrors();
        builder.showErrors(readErrors(builder.estimate));
      }
    });
  });

  // Copy buttons: data-copy names the element whose text is copied (a write key, a snippet).
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.classList.add("copied");
    }, function () {
      button.classList.remove("copied");
    });
  });
})();

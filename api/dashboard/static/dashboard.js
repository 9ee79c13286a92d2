// 一屏总览: reads /api/v1/stats/dashboard every minute and the live feed every 5 seconds; the hot spots
// (/api/v1/stats/hotspots) with the dashboard and whenever the feed brings new orders.
// The token comes from the signed link (#token=…) or a pasted login token; it stays in this tab only.
(function () {
  "use strict";

  var TOKEN_KEY = "sidan.dashboard.token";
  var FULL_REFRESH_MS = 60000;
  var FEED_POLL_MS = 5000;
  var FEED_KEEP = 30;
  var FONT = getComputedStyle(document.documentElement).getPropertyValue("--cjk").trim() || "sans-serif";
  var charts = {};
  var lastFeedId = 0;
  var feedTimer = null;
  var refreshTimer = null;

  function $(id) { return document.getElementById(id); }

  function takeTokenFromLink() {
    var match = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);  // keep it off the screen
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function api(path) {
    return fetch(path, { headers: { Authorization: "Bearer " + sessionStorage.getItem(TOKEN_KEY) } })
      .then(function (response) {
        if (response.ok) { return response; }
        return response.json().catch(function () { return {}; }).then(function (body) {
          var error = new Error((body.error && body.error.message) || ("请求失败 " + response.status));
          error.status = response.status;
          throw error;
        });
      });
  }

  function showLogin(message) {
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    stopTimers();
  }

  function stopTimers() {
    clearInterval(feedTimer); clearInterval(refreshTimer);
    feedTimer = refreshTimer = null;
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (className) { node.className = className; }
    return node;
  }

  function tone(value) {
    if (value === null || value === undefined) { return ""; }
    return value >= 0.9 ? "good" : value >= 0.75 ? "warn" : "bad";
  }

  function renderHeadline(summary, definitions) {
    ["response", "completion", "satisfaction", "resolution"].forEach(function (name) {
      var rate = summary.rates[name];
      var card = $("rate-" + name);
      var definition = definitions.rates[name];
      card.className = "rate-card" + (name === "resolution" ? " small" : "") + " " + tone(rate.value);
      card.querySelector(".value").textContent = rate.display;
      card.querySelector(".fraction").textContent = rate.numerator + " / " + rate.denominator;
      card.querySelector(".hint").textContent = definition.numerator + " ÷ " + definition.denominator;
      card.dataset.numerator = rate.numerator;
      card.dataset.denominator = rate.denominator;
    });
  }

  function renderKpis(summary) {
    var c = summary.counts, d = summary.durations, r = summary.rates;
    var items = [
      ["受理", c.received], ["受理事项", c.matters], ["派单", c.dispatched], ["在办", c.open], ["当前超期", c.overdue, c.overdue > 0],
      ["升级督办", c.escalated], ["重办", c.reopened], ["办结(未解决)", c.closed_unresolved],
      ["不予受理", c.invalid], ["合并工单", c.merged], ["未评价", c.unrated], ["评价次数", c.ratings],
      ["接单用时中位数", d.accept.median_display], ["接单用时 P90", d.accept.p90_display],
      ["办结用时中位数", d.resolve.median_display], ["办结用时 P90", d.resolve.p90_display],
      ["自动派单率", r.auto_dispatch.display], ["自动派单纠正率", r.auto_corrected.display]
    ];
    var box = $("kpis");
    box.textContent = "";
    items.forEach(function (item) {
      var kpi = el("div", null, "kpi" + (item[2] ? " alert" : ""));
      kpi.appendChild(el("div", item[0], "label"));
      kpi.appendChild(el("div", item[1], "number"));
      box.appendChild(kpi);
    });
  }

  function chart(id) {
    if (!charts[id]) { charts[id] = echarts.init($(id), null, { renderer: "canvas" }); }
    return charts[id];
  }

  function percent(rate) { return rate.value === null ? null : Math.round(rate.value * 1000) / 10; }

  var baseText = { fontFamily: FONT, color: "#c9d7e8" };
  var axisLine = { lineStyle: { color: "#3a5a80" } };
  var splitLine = { lineStyle: { color: "#1f3b5e" } };

  function renderTrend(trend) {
    var labels = trend.buckets.map(function (b) { return b.key.slice(5); });
    $("trend-by").textContent = trend.by === "day" ? "按日" : "按周";
    chart("chart-trend").setOption({
      textStyle: baseText, animation: false,
      tooltip: { trigger: "axis" },
      legend: { textStyle: baseText, top: 0 },
      grid: { left: 44, right: 44, top: 34, bottom: 28 },
      xAxis: { type: "category", data: labels, axisLine: axisLine, axisLabel: { color: "#c9d7e8" } },
      yAxis: [
        { type: "value", name: "件", minInterval: 1, splitLine: splitLine, axisLine: axisLine },
        { type: "value", name: "%", min: 0, max: 100, splitLine: { show: false }, axisLine: axisLine }
      ],
      series: [
        { name: "受理", type: "bar", data: trend.buckets.map(function (b) { return b.counts.received; }),
          itemStyle: { color: "#2f6fb3" } },
        { name: "响应率", type: "line", yAxisIndex: 1, connectNulls: false,
          data: trend.buckets.map(function (b) { return percent(b.rates.response); }) },
        { name: "办结率", type: "line", yAxisIndex: 1,
          data: trend.buckets.map(function (b) { return percent(b.rates.completion); }) },
        { name: "满意率", type: "line", yAxisIndex: 1,
          data: trend.buckets.map(function (b) { return percent(b.rates.satisfaction); }) }
      ]
    }, true);
  }

  function renderCategories(groups) {
    chart("chart-category").setOption({
      textStyle: baseText, animation: false,
      tooltip: { trigger: "item", formatter: "{b}: {c} 件 ({d}%)" },
      series: [{
        type: "pie", radius: ["38%", "68%"], label: { color: "#c9d7e8", fontFamily: FONT, formatter: "{b}\n{c} 件" },
        data: groups.map(function (g) { return { name: g.label, value: g.counts.received }; })
      }]
    }, true);
  }

  function renderDepartments(groups) {
    var sorted = groups.slice(0, 12);
    chart("chart-department").setOption({
      textStyle: baseText, animation: false,
      tooltip: { trigger: "axis" },
      legend: { textStyle: baseText, top: 0 },
      grid: { left: 44, right: 44, top: 34, bottom: 46 },
      xAxis: { type: "category", data: sorted.map(function (g) { return g.label; }), axisLine: axisLine,
               axisLabel: { interval: 0, rotate: sorted.length > 8 ? 30 : 0, color: "#c9d7e8" } },
      yAxis: [
        { type: "value", name: "件", minInterval: 1, splitLine: splitLine, axisLine: axisLine },
        { type: "value", name: "%", min: 0, max: 100, splitLine: { show: false }, axisLine: axisLine }
      ],
      series: [
        { name: "受理", type: "bar", data: sorted.map(function (g) { return g.counts.received; }),
          itemStyle: { color: "#2f6fb3" } },
        { name: "当前超期", type: "bar", data: sorted.map(function (g) { return g.counts.overdue; }),
          itemStyle: { color: "#f0605d" } },
        { name: "响应率", type: "line", yAxisIndex: 1,
          data: sorted.map(function (g) { return percent(g.rates.response); }) },
        { name: "满意率", type: "line", yAxisIndex: 1,
          data: sorted.map(function (g) { return percent(g.rates.satisfaction); }) }
      ]
    }, true);
  }

  function fillTable(tbody, rows) {
    tbody.textContent = "";
    rows.forEach(function (cells) {
      var tr = el("tr", null, cells.className || "");
      cells.values.forEach(function (value, index) {
        tr.appendChild(el("td", value, cells.textColumn === index ? "text" : ""));
      });
      tbody.appendChild(tr);
    });
  }

  function renderGrids(groups) {
    fillTable($("grid-table").querySelector("tbody"), groups.map(function (g) {
      return { values: [g.label, g.counts.received, g.counts.open, g.counts.overdue, g.rates.response.display,
                        g.rates.satisfaction.display] };
    }));
  }

  var LEVELS = ["村(网格)", "村委", "乡镇"];

  function renderOverdue(rows) {
    $("overdue-count").textContent = rows.length ? String(rows.length) : "";
    fillTable($("overdue-table").querySelector("tbody"), rows.map(function (o) {
      return { className: "level-" + o.escalation_level, textColumn: 7,
               values: [o.number, o.category, o.urgency, o.department, o.state_label,
                        LEVELS[o.escalation_level] || o.escalation_level, o.overdue_display, o.summary] };
    }));
  }

  function feedItem(order, fresh) {
    var li = el("li", null, fresh ? "new" : "");
    var head = el("div");
    head.appendChild(el("span", order.number + " "));
    head.appendChild(el("span", order.urgency, order.urgency === "急难事" ? "urgent" : ""));
    li.appendChild(head);
    li.appendChild(el("div", order.summary));
    li.appendChild(el("div", order.submitted_at.replace("T", " ").slice(0, 16) + " · " + order.category + " · " +
                      order.department + " · " + order.state_label, "meta"));
    li.dataset.id = order.id;
    return li;
  }

  function renderFeed(rows) {
    var list = $("feed");
    list.textContent = "";
    rows.forEach(function (order) { list.appendChild(feedItem(order, false)); });
    lastFeedId = rows.reduce(function (max, o) { return Math.max(max, o.id); }, lastFeedId);
  }

  function pollFeed() {
    api("/api/v1/stats/feed?after=" + lastFeedId + "&limit=20").then(function (response) {
      return response.json();
    }).then(function (body) {
      var list = $("feed");
      body.orders.slice().reverse().forEach(function (order) {  // oldest first, each on top
        list.insertBefore(feedItem(order, true), list.firstChild);
        lastFeedId = Math.max(lastFeedId, order.id);
      });
      while (list.children.length > FEED_KEEP) { list.removeChild(list.lastChild); }
      if (body.orders.length) { loadHotspots(); }  // a new report may make or grow a hot spot
    }).catch(function (error) {
      if (error.status === 401 || error.status === 403) { showLogin(error.message); }
    });
  }

  function time(iso) { return iso ? iso.replace("T", " ").slice(5, 16) : ""; }

  function renderHotspots(body) {
    var spots = body.hotspots;
    $("hotspots-window").textContent = "(最近 " + body.window_hours + " 小时,同村相近反映 " + body.min_reports + " 件以上)";
    $("hotspots-count").textContent = spots.length ? String(spots.length) : "";
    $("hotspots-note").textContent = spots.length ? "" : "暂无热点诉求";
    var tbody = $("hotspots-table").querySelector("tbody");
    tbody.textContent = "";
    spots.forEach(function (spot) {
      var tr = el("tr", null, spot.alerted_at ? "level-2" : "level-1");
      [spot.place, spot.count + " 件", spot.terms.join("、"), time(spot.first_reported_at),
       time(spot.last_reported_at)].forEach(function (value) { tr.appendChild(el("td", value)); });
      tr.appendChild(el("td", spot.numbers.join(" "), "numbers"));
      tr.appendChild(el("td", spot.summary, "text"));
      tr.appendChild(el("td", spot.alerted_at ? "已提醒 " + time(spot.alerted_at) : "—"));
      tbody.appendChild(tr);
    });
    document.body.dataset.hotspots = String(spots.length);
  }

  function loadHotspots() {
    return api("/api/v1/stats/hotspots").then(function (response) {
      return response.json();
    }).then(renderHotspots).catch(function (error) {
      if (error.status === 401 || error.status === 403) { showLogin(error.message); return; }
      $("hotspots-note").textContent = "热点诉求暂不可用:" + error.message;
    });
  }

  function renderDefinitions(definitions) {
    var parts = Object.keys(definitions.rates).map(function (name) {
      var d = definitions.rates[name];
      return d.name + " = " + d.numerator + " ÷ " + d.denominator;
    });
    $("definitions").textContent = "口径:本期受理的工单,按当前状态统计;分母为 0 的比率显示为“—”。" + parts.join(";") + "。";
  }

  function render(data) {
    $("township").textContent = data.township;
    if (!$("report-month").value) { $("report-month").value = data.generated_at.slice(0, 7); }  // the server's month
    // A dashboard link may take the summary, not the list of orders (the workbook holds one): Excel needs a login.
    $("export-xlsx").hidden = data.can_export_orders === false;
    $("updated").textContent = data.period.label + "(" + data.period.start + " 至 " + data.period.end + ")· 更新于 " +
      data.generated_at.replace("T", " ").slice(0, 19);
    renderHeadline(data.summary, data.definitions);
    renderKpis(data.summary);
    renderTrend(data.trend);
    renderCategories(data.by_category);
    renderDepartments(data.by_department);
    renderGrids(data.by_grid);
    renderOverdue(data.overdue);
    renderFeed(data.feed);
    renderDefinitions(data.definitions);
  }

  function load() {
    var period = $("period").value;
    return api("/api/v1/stats/dashboard?period=" + encodeURIComponent(period)).then(function (response) {
      return response.json();
    }).then(function (data) {
      $("login").hidden = true;
      $("board").hidden = false;
      render(data);
      loadHotspots();
      Object.keys(charts).forEach(function (id) { charts[id].resize(); });
      document.body.dataset.period = period;
      document.body.dataset.ready = "1";
      if (!feedTimer) { feedTimer = setInterval(pollFeed, FEED_POLL_MS); }
      if (!refreshTimer) { refreshTimer = setInterval(load, FULL_REFRESH_MS); }
    }).catch(function (error) {
      if (error.status === 401 || error.status === 403) { showLogin(error.message); return; }
      $("updated").textContent = "刷新失败:" + error.message + "(稍后自动重试)";
    });
  }

  function download(kind) {
    var month = $("report-month").value;
    if (!/^\d{4}-\d{2}$/.test(month)) { alert("请先选择月份"); return; }
    var path = "/api/v1/stats/report/" + month + (kind === "xlsx" ? ".xlsx" : ".csv");
    api(path).then(function (response) { return response.blob(); }).then(function (blob) {
      var link = el("a");
      link.href = URL.createObjectURL(blob);
      link.download = "四单月报-" + month + "." + kind;
      document.body.appendChild(link);
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    }).catch(function (error) { alert("导出失败:" + error.message); });
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var token = $("login-token").value.trim();
    if (!token) { $("login-error").textContent = "请粘贴登录凭证"; return; }
    sessionStorage.setItem(TOKEN_KEY, token);
    load();
  });
  $("period").addEventListener("change", function () { document.body.dataset.ready = "0"; load(); });
  $("export-xlsx").addEventListener("click", function () { download("xlsx"); });
  $("export-csv").addEventListener("click", function () { download("csv"); });
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (id) { charts[id].resize(); }); });

  if (takeTokenFromLink()) { load(); } else { showLogin(""); }
})();

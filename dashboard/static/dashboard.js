// Splitwerk dashboard: charts from data-chart attributes, extra form rows, the coverage slider,
// the traffic split preview, copy buttons.
// Loaded as a file (the pages' CSP forbids inline scripts); every feature degrades to the
// server-rendered page: charts have a data table, forms work without it.
(function () {
  'use strict';

  // Control in neutral grey, challengers in distinct hues that stay apart for colour-blind
  // readers (Okabe–Ito inspired); colour here names a variant, it never means "better".
  var PALETTE = ['#5b6472', '#0b6bcb', '#c25e00', '#7b3fbf', '#00806b', '#b0276a',
    '#4a6b00', '#8a6d00', '#1f7a99', '#6b4f3a'];
  var BAND_ALPHA = '26'; // hex alpha of the 95 % bands: about 15 % opacity

  function formatter(chart) {
    var options = { maximumFractionDigits: 0 };
    if (chart.unit === 'percent') options = { style: 'percent', maximumFractionDigits: 1 };
    if (chart.unit === 'currency') options = { style: 'currency', currency: chart.currency };
    var format = new Intl.NumberFormat(chart.locale, options);
    return function (value) { return value === null ? '–' : format.format(value); };
  }

  function datasets(chart) {
    var result = [];
    chart.series.forEach(function (series, index) {
      var colour = PALETTE[index % PALETTE.length];
      if (series.upper && series.lower) {
        result.push({ label: series.label + ' upper', data: series.upper, isBand: true,
          borderWidth: 0, pointRadius: 0, fill: false, backgroundColor: colour + BAND_ALPHA });
        result.push({ label: series.label + ' lower', data: series.lower, isBand: true,
          borderWidth: 0, pointRadius: 0, fill: '-1', backgroundColor: colour + BAND_ALPHA });
      }
      result.push({ label: series.label, data: series.values, borderColor: colour,
        backgroundColor: colour, borderWidth: 2, pointRadius: 0, pointHitRadius: 8,
        tension: 0.2, fill: false });
    });
    return result;
  }

  function drawChart(canvas) {
    var chart = JSON.parse(canvas.getAttribute('data-chart'));
    var format = formatter(chart);
    new window.Chart(canvas, {
      type: 'line',
      data: { labels: chart.labels, datasets: datasets(chart) },
      options: {
        animation: false, // figures, not a show; also spares readers who reduce motion
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          // rates cannot fall below zero even where a wide early band would reach there
          y: { min: chart.unit === 'percent' ? 0 : undefined,
            ticks: { callback: format }, grid: { color: '#e6e8eb' } },
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } }
        },
        plugins: {
          legend: { position: 'bottom', labels: {
            filter: function (item, data) { return !data.datasets[item.datasetIndex].isBand; },
            boxWidth: 12, boxHeight: 2 } },
          tooltip: {
            filter: function (item) { return !item.dataset.isBand; },
            callbacks: { label: function (item) {
              return item.dataset.label + ': ' + format(item.parsed.y);
            } }
          }
        }
      }
    });
  }

  function drawCharts() {
    var canvases = document.querySelectorAll('canvas[data-chart]');
    if (!canvases.length || !window.Chart) return; // the tables below each chart remain
    window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    window.Chart.defaults.color = '#3d4450';
    Array.prototype.forEach.call(canvases, drawChart);
  }

  function enableRowButtons() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-add-row]'), function (button) {
      var group = button.getAttribute('data-add-row');
      button.addEventListener('click', function () {
        var next = document.querySelector('[data-row="' + group + '"][hidden]');
        if (!next) return;
        next.hidden = false;
        var input = next.querySelector('input, textarea, select');
        if (input) input.focus();
        if (!document.querySelector('[data-row="' + group + '"][hidden]')) button.hidden = true;
      });
    });
  }

  function enableSliders() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-mirror]'), function (slider) {
      var field = document.getElementById(slider.getAttribute('data-mirror'));
      if (!field) return;
      slider.hidden = false;
      slider.addEventListener('input', function () { field.value = slider.value; });
      field.addEventListener('input', function () { slider.value = field.value; });
    });
  }

  var COPIED_MS = 2000; // how long a copy button says "Copied" before its label returns

  // The Clipboard API needs a secure context (https, or localhost); elsewhere the selected
  // text is copied the older way.
  function copyText(text, element) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = document.execCommand('copy');
    selection.removeAllRanges();
    return copied ? Promise.resolve() : Promise.reject(new Error('copy refused'));
  }

  function enableCopyButtons() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-copy]'), function (button) {
      var source = document.getElementById(button.getAttribute('data-copy'));
      if (!source) return;
      var label = button.textContent;
      button.addEventListener('click', function () {
        copyText(source.textContent, source).then(function () {
          button.textContent = button.getAttribute('data-copied');
          button.setAttribute('data-state', 'copied');
          window.setTimeout(function () {
            button.textContent = label;
            button.removeAttribute('data-state');
          }, COPIED_MS);
        }, function () {
          // the text stays selectable in the page: nothing is lost when copying is refused
          button.setAttribute('data-state', 'failed');
        });
      });
    });
  }

  // The traffic split preview of the experiment form: each variant's share of the traffic from
  // the typed weights, updated as they change (the server renders the same on every load).
  function enableSplitPreview() {
    var preview = document.getElementById('split-preview');
    if (!preview) return;
    var list = preview.querySelector('.split-list');
    var format = new Intl.NumberFormat(document.documentElement.lang,
      { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1 });
    function update() {
      var rows = [];
      var total = 0;
      for (var row = 0; document.getElementById('variants-' + row + '-key'); row += 1) {
        var key = document.getElementById('variants-' + row + '-key').value.trim();
        var weightText = document.getElementById('variants-' + row + '-weight').value.trim();
        if (!key && !weightText) continue;
        var weight = Number(weightText);
        if (!(weight > 0) || !isFinite(weight)) weight = 0;
        rows.push({ key: key || '#' + (row + 1), weight: weight });
        total += weight;
      }
      list.textContent = '';
      if (!(total > 0)) {
        var empty = document.createElement('li');
        empty.className = 'muted';
        empty.textContent = preview.getAttribute('data-label-empty');
        list.appendChild(empty);
        return;
      }
      rows.forEach(function (item) {
        var line = document.createElement('li');
        var key = document.createElement('span');
        key.className = 'split-key';
        key.textContent = item.key;
        var share = document.createElement('span');
        share.className = 'split-share';
        share.textContent = format.format(item.weight / total);
        line.appendChild(key);
        line.appendChild(document.createTextNode(' '));
        line.appendChild(share);
        list.appendChild(line);
      });
    }
    var variants = document.getElementById('variants');
    variants.addEventListener('input', update);
  }

  // Wide tables read as labelled cards on phones (dashboard.css): every cell gets its column's
  // heading as data-label. Without this script the tables scroll sideways instead.
  function labelTableCells() {
    Array.prototype.forEach.call(document.querySelectorAll('table.results, table.customers, table.audit'),
      function (table) {
        var headings = [];
        Array.prototype.forEach.call(table.querySelectorAll('thead th'), function (th) {
          for (var span = 0; span < th.colSpan; span += 1) {
            headings.push(th.textContent.replace(/\s+/g, ' ').trim());
          }
        });
        Array.prototype.forEach.call(table.querySelectorAll('tbody tr'), function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (cell.colSpan === 1 && headings[column]) {
              cell.setAttribute('data-label', headings[column]);
            }
            column += cell.colSpan;
          });
        });
        table.classList.add('stacked');
      });
  }

  function focusErrors() {
    var summary = document.getElementById('error-summary');
    if (summary) summary.focus();
  }

  function start() {
    drawCharts();
    enableRowButtons();
    enableSliders();
    enableCopyButtons();
    enableSplitPreview();
    labelTableCells();
    focusErrors();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();

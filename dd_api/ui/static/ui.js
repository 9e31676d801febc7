// deepdecipher UI: keyboard shortcuts and the text boxes (live activations, N2G prediction, text
// search). Everything else works without it.
(function () {
  "use strict";
  var body = document.body;
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    var target = {
      ArrowLeft: "prev", k: "prev", ArrowRight: "next", j: "next", r: "random", u: "up"
    }[e.key];
    var url = target && body.dataset[target];
    if (url) { e.preventDefault(); window.location.href = url; }
  });

  // One predicted token: `value` in the neuron's units (scaled_activations), `norm` the same
  // prediction as a fraction of the neuron's max activation (activations), which sets the colour.
  function span(token, value, norm) {
    var s = document.createElement("span");
    s.textContent = token.replace(/\n/g, "\u21b5\n");
    s.dataset.act = String(value);
    s.dataset.norm = String(norm);
    s.title = value.toFixed(4) + " (" + norm.toFixed(3) + " of max)";
    var level = Math.min(1, Math.max(0, norm));
    if (level >= 0.005) s.style.setProperty("--a", level.toFixed(2));
    return s;
  }

  // GET JSON; a 503 with Retry-After (the inference process starting or loading the model) is
  // retried for up to a minute, showing its detail in `note` meanwhile.
  function getJSON(url, note, tries) {
    tries = tries || 0;
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      var wait = r.status === 503 && Number(r.headers.get("Retry-After"));
      return r.json().then(function (j) {
        if (wait && tries < 60) {
          if (note) note.textContent = "… " + j.detail;
          return new Promise(function (ok) { setTimeout(ok, Math.min(wait, 5) * 1000); })
            .then(function () { return getJSON(url, note, tries + wait); });
        }
        return { ok: r.ok, body: j };
      }, function () { return { ok: false, body: { detail: "HTTP " + r.status } }; });
    });
  }

  function fail(out, res) {
    out.classList.add("err");
    out.textContent = (res.body && (res.body.detail || res.body.missing_data_types)) || "no answer";
  }

  // The neuron page's text box: the model's real activations (live route), coloured by their
  // fraction of the neuron's dataset max, and the N2G prediction where the neuron has a graph.
  var box = document.getElementById("predict");
  var form = box && box.querySelector("form");
  if (form) {
    var live = box.querySelector(".live"), out = box.querySelector(".out");
    var range = box.querySelector(".range");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var q = "?text=" + encodeURIComponent(form.elements.text.value);
      [live, out].forEach(function (o) { if (o) { o.textContent = "…"; o.classList.remove("err"); } });
      getJSON(box.dataset.live + q, live).then(function (res) {
        var d = res.body && res.body.data;
        live.textContent = "";
        if (!res.ok || !d) return fail(live, res);
        var top = d.dataset_max > 0 ? d.dataset_max : Math.max(1e-9, Math.abs(d.max_activation));
        range.textContent = "(colour: activation ÷ dataset max " + (d.dataset_max === null ? "n/a" : d.dataset_max) +
          "; text max " + d.max_activation + " at token " + d.max_activating_token_index + ")";
        d.tokens.forEach(function (tok, i) {
          var s = span(tok, d.activations[i], d.activations[i] / top);
          if (i === d.max_activating_token_index) s.classList.add("pk");
          live.appendChild(s);
        });
      }).catch(function (err) { fail(live, { body: { detail: String(err) } }); });
      if (!out || !box.dataset.url) return;
      getJSON(box.dataset.url + q).then(function (res) {
        var d = res.body && res.body.data;
        out.textContent = "";
        if (!res.ok || !d) return fail(out, res);
        var scaled = d.scaled_activations || [], norm = d.activations || [];
        d.tokens.forEach(function (tok, i) { out.appendChild(span(tok, scaled[i] || 0, norm[i] || 0)); });
      }).catch(function (err) { fail(out, { body: { detail: String(err) } }); });
    });
  }

  // The model page's "Which neurons fire on this text?": text-search results, each a link to
  // the neuron and the text around its peak token (outlined). The text is kept in the URL (?fire=).
  var fire = document.getElementById("fire");
  var fform = fire && fire.querySelector("form");
  if (!fform) return;
  var list = fire.querySelector(".fired"), found = fire.querySelector(".found");
  function search() {
    var text = fform.elements.text.value, layer = fform.elements.layer.value;
    var q = "?text=" + encodeURIComponent(text) + (layer ? "&layer=" + layer : "") + "&limit=20";
    list.textContent = "";
    found.classList.remove("err");
    found.textContent = "…";
    getJSON(fire.dataset.url + q, found).then(function (res) {
      var d = res.body && res.body.data;
      found.textContent = "";
      if (!res.ok || !d) return fail(found, res);
      found.textContent = d.total + " neurons ranked; the " + d.neurons.length + " that fire most:";
      d.neurons.forEach(function (n) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = fire.dataset.viz + "/" + n.layer + "/" + n.neuron;
        a.textContent = "L" + n.layer + " N" + n.neuron;
        li.appendChild(a);
        li.dataset.layer = n.layer;
        li.dataset.neuron = n.neuron;
        var m = document.createElement("span");
        m.className = "muted";
        m.textContent = " " + n.relative_activation.toFixed(3) + " of dataset max (" + n.activation + ") at ";
        li.appendChild(m);
        var toks = document.createElement("span");
        toks.className = "toks";
        var from = Math.max(1, n.peak_token_index - 8), to = Math.min(d.tokens.length, n.peak_token_index + 3);
        for (var i = from; i < to; i++) {
          var s = document.createElement("span");
          s.textContent = d.tokens[i].replace(/\n/g, "\u21b5");
          if (i === n.peak_token_index) { s.className = "pk"; s.title = "peak token " + i; }
          toks.appendChild(s);
        }
        li.appendChild(toks);
        list.appendChild(li);
      });
    }).catch(function (err) { fail(found, { body: { detail: String(err) } }); });
  }
  fform.addEventListener("submit", function (e) {
    e.preventDefault();
    var url = new URL(window.location.href);
    url.searchParams.set("fire", fform.elements.text.value);
    window.history.replaceState(null, "", url);
    search();
  });
  var initial = new URLSearchParams(window.location.search).get("fire");
  if (initial) { fform.elements.text.value = initial; search(); }
})();

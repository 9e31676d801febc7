// deepdecipher UI: keyboard shortcuts and the N2G prediction box. Everything else works without it.
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

  var box = document.getElementById("predict");
  var form = box && box.querySelector("form");
  if (!form) return;
  var out = box.querySelector(".out");
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = form.elements.text.value;
    out.textContent = "…";
    out.classList.remove("err");
    fetch(box.dataset.url + "?text=" + encodeURIComponent(text), { headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().then(function (j) { return { ok: r.ok, body: j }; },
          function () { return { ok: false, body: { detail: "HTTP " + r.status } }; });
      })
      .then(function (res) {
        out.textContent = "";
        var d = res.body && res.body.data;
        if (!res.ok || !d) {
          out.classList.add("err");
          out.textContent = (res.body && (res.body.detail || res.body.missing_data_types)) || "no prediction";
          return;
        }
        var scaled = d.scaled_activations || [], norm = d.activations || [];
        d.tokens.forEach(function (tok, i) { out.appendChild(span(tok, scaled[i] || 0, norm[i] || 0)); });
      })
      .catch(function (err) { out.classList.add("err"); out.textContent = String(err); });
  });
})();

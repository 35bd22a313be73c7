// Client-side search over codes, our descriptions, synonyms and FAQ questions, with MiniSearch
// (vendored from npm, see vendor/). The index is built in the browser from search-index.json.
(function () {
  "use strict";
  var form = document.getElementById("search-form");
  var input = document.getElementById("search-input");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  if (!form || !input || !status || !list || typeof MiniSearch === "undefined") { return; }
  var ready = null;

  function load() {
    if (!ready) {
      ready = fetch("search-index.json").then(function (response) {
        if (!response.ok) { throw new Error("search index: HTTP " + response.status); }
        return response.json();
      }).then(function (docs) {
        var index = new MiniSearch({
          fields: ["code", "descriptor", "synonyms", "questions"],
          storeFields: ["code", "descriptor", "url"],
          searchOptions: { boost: { code: 4, synonyms: 2, descriptor: 2 }, prefix: true, fuzzy: 0.2 }
        });
        index.addAll(docs);
        return index;
      });
    }
    return ready;
  }

  function show(results, query) {
    list.textContent = "";
    results.slice(0, 50).forEach(function (hit) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = hit.url;
      link.textContent = hit.code;
      item.appendChild(link);
      if (hit.descriptor) { item.appendChild(document.createTextNode(": " + hit.descriptor)); }
      list.appendChild(item);
    });
    status.textContent = results.length + " result" + (results.length === 1 ? "" : "s") + " for \u201c" + query + "\u201d";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var query = input.value.trim();
    if (!query) { return; }
    status.textContent = "Searching\u2026";
    load().then(function (index) { show(index.search(query), query); }, function (error) {
      status.textContent = "Search is unavailable: " + error.message;
    });
  });
  var params = new URLSearchParams(window.location.search);
  if (params.get("q")) { input.value = params.get("q"); form.requestSubmit(); }
})();

// The submit form's upload (templates/submissions/submit.html; needs sha256.js). Without JavaScript the
// form still posts the file in one request.
//
// A file up to data-part-bytes goes in one multipart POST to the page, with a progress bar. A larger one
// takes the two steps the egomask CLI takes, through the API with this session's cookie:
//   POST <data-upload-start>          -> one URL per part (S3 presigned URLs when the server uses S3)
//   PUT  each part to its URL         -> retried with backoff when it fails
//   POST complete_url + sha256        -> the server checks size, sha256 and zip, then makes the submission
// The sha256 is computed here, part by part as the parts are read (sha256.js), and checked by the server
// against what arrived: a damaged part is caught before anything is scored or counted. The upload id and
// the parts already sent are kept in localStorage, so after a dropped connection "Upload and score" with
// the same file sends only the parts that are missing.
(function () {
  "use strict";

  var ATTEMPTS = 5;       // per part: the first try and four retries
  var FIRST_WAIT = 500;   // ms before the first retry; doubles each time
  var STORE = "egomask-upload:";

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function Failure(message, keep) {  // keep: the upload can be resumed, do not forget it
    this.message = message;
    this.keep = keep;
  }

  function request(method, url, body, headers, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.keys(headers || {}).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (onProgress) xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded); };
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* a part's answer, or a proxy's page */ }
        resolve({ status: xhr.status, data: data, etag: xhr.getResponseHeader("ETag"), url: xhr.responseURL });
      };
      xhr.onerror = function () { reject(new Failure("the connection was interrupted", true)); };
      xhr.send(body);
    });
  }

  function errorOf(response, fallback) {
    if (response.data && response.data.error) return response.data.error;
    if (response.url && response.url.indexOf("/login/") !== -1) {
      return "You are logged out. Log in again (in another tab), then retry the upload.";
    }
    if (response.status === 413) return "The file is too large for the server.";
    return fallback + " (HTTP " + response.status + "). Please try again.";
  }

  function setupUpload(form) {
    var bar = form.querySelector("progress");
    var box = form.querySelector("[data-upload-progress]");
    var stage = form.querySelector("[data-upload-stage]");
    var percent = form.querySelector("[data-upload-percent]");
    var errorBox = form.querySelector("[data-upload-error]");
    var button = form.querySelector("[data-upload-button]");
    var partBytes = parseInt(form.getAttribute("data-part-bytes"), 10) || 16 * 1024 * 1024;
    var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
    var json = { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" };

    function field(name) { return form.elements[name] ? form.elements[name].value.trim() : ""; }

    function progress(done, total, label) {
      var value = total ? Math.floor((done / total) * 100) : 100;
      bar.value = value;
      percent.textContent = value + "%";
      if (label) stage.textContent = label;
    }

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = false;
      box.hidden = true;
      button.disabled = false;
      errorBox.scrollIntoView({ block: "center", behavior: "smooth" });
    }

    // --- small files: one POST to the page ---------------------------------------------------------
    function sendWhole() {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) progress(e.loaded, e.total); };
      xhr.upload.onload = function () { progress(1, 1, "Checking"); };
      xhr.onload = function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: a proxy or server error page */ }
        if (body && body.redirect) window.location.assign(body.redirect);
        else showError(errorOf({ status: xhr.status, data: body, url: xhr.responseURL }, "The upload failed"));
      };
      xhr.onerror = function () { showError("The upload failed: the connection was interrupted. Please try again."); };
      xhr.send(new FormData(form));
    }

    // --- large files: in parts, resumable ---------------------------------------------------------
    function storeKey(file) {
      return STORE + form.getAttribute("data-upload-key") + ":" + file.name + ":" + file.size + ":" + file.lastModified;
    }

    function load(key) {
      try {
        var state = JSON.parse(window.localStorage.getItem(key) || "null");
        return state && Date.parse(state.expires_at) > Date.now() + 60000 ? state : null;
      } catch (e) { return null; }
    }

    function save(key, state) {
      try { window.localStorage.setItem(key, JSON.stringify(state)); } catch (e) { /* private mode: no resume */ }
    }

    function start(file, key) {
      var parts = Math.ceil(file.size / partBytes);
      var body = { filename: file.name, size: file.size, parts: parts, method_name: field("method_name"),
                   method_url: field("method_url"), code_url: field("code_url") };
      return request("POST", form.getAttribute("data-upload-start"), JSON.stringify(body), json).then(function (r) {
        if (r.status !== 201) throw new Failure(errorOf(r, "The upload could not start"), false);
        var state = { id: r.data.id, parts: r.data.parts, complete_url: r.data.complete_url,
                      expires_at: r.data.expires_at, part_bytes: partBytes, sent: {} };
        save(key, state);
        return state;
      });
    }

    function putPart(state, target, blob, onProgress) {
      var attempt = 0;
      function once() {
        attempt += 1;
        return request("PUT", target.url, blob, {}, onProgress).then(function (r) {
          if (r.status >= 200 && r.status < 300) return r.etag || "";
          if (r.status === 403 || r.status === 409) {  // the upload expired or was discarded: start over
            throw new Failure(errorOf(r, "The upload is no longer open"), false);
          }
          throw new Failure("part " + target.part_number + " was refused (HTTP " + r.status + ")", true);
        }).catch(function (failure) {
          if (!failure.keep || attempt >= ATTEMPTS) throw failure;
          return sleep(FIRST_WAIT * Math.pow(2, attempt - 1)).then(once);
        });
      }
      return once();
    }

    function sendParts(file, key, state) {
      var hash = new window.EgoMaskSha256();
      var total = file.size, before = 0;
      var chain = Promise.resolve();
      state.parts.forEach(function (target) {
        chain = chain.then(function () {
          var blob = file.slice((target.part_number - 1) * state.part_bytes, target.part_number * state.part_bytes);
          return blob.arrayBuffer().then(function (buffer) {
            hash.update(new Uint8Array(buffer));  // in order, whether or not the part is sent again
            if (state.sent[target.part_number] !== undefined) return;  // sent before the connection dropped
            return putPart(state, target, blob, function (loaded) { progress(before + loaded, total); })
              .then(function (etag) {
                state.sent[target.part_number] = etag;
                save(key, state);
              });
          }).then(function () {
            before += blob.size;
            progress(before, total);
          });
        });
      });
      return chain.then(function () { return hash.hex(); });
    }

    function complete(state, sha256) {
      var etags = state.parts.map(function (t) { return { PartNumber: t.part_number, ETag: state.sent[t.part_number] }; });
      var body = { sha256: sha256, method_name: field("method_name"), method_description: field("method_description"),
                   method_url: field("method_url"), code_url: field("code_url"),
                   is_public: form.elements.is_public ? form.elements.is_public.checked : true };
      // ETags S3 did not let this page read (CORS): the server asks S3 which parts it has instead.
      if (etags.every(function (e) { return e.ETag; })) body.parts = etags;
      return request("POST", state.complete_url, JSON.stringify(body), json).then(function (r) {
        if (r.status === 201) return r.data.id;
        if (r.status === 409 && r.data && r.data.detail && r.data.detail.submission_id) {
          return r.data.detail.submission_id;  // completed by an earlier try whose answer was lost
        }
        throw new Failure(errorOf(r, "The upload could not be completed"), r.status >= 500);
      });
    }

    function sendInParts(file) {
      var key = storeKey(file);
      var resumed = load(key);
      progress(0, file.size, resumed ? "Resuming the upload" : "Uploading in parts");
      return (resumed ? Promise.resolve(resumed) : start(file, key)).then(function (state) {
        return sendParts(file, key, state).then(function (sha256) {
          progress(1, 1, "Checking");
          return complete(state, sha256);
        });
      }).then(function (submissionId) {
        window.localStorage.removeItem(key);
        window.location.assign("/submissions/" + submissionId + "/");
      }, function (failure) {
        if (!(failure instanceof Failure)) failure = new Failure(String(failure), true);
        if (!failure.keep) window.localStorage.removeItem(key);
        showError(failure.keep ? "The upload stopped: " + failure.message + ". Press \u201cUpload and score\u201d " +
                  "again with the same file to resume; the parts already sent are kept." : failure.message);
      });
    }

    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return;
      var file = form.elements.file && form.elements.file.files[0];
      event.preventDefault();
      errorBox.hidden = true;
      button.disabled = true;
      box.hidden = false;
      progress(0, 1, "Uploading");
      if (file && file.size > partBytes && window.EgoMaskSha256 && window.localStorage) sendInParts(file);
      else sendWhole();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-upload]").forEach(setupUpload);
  });
})();

/* FleetOps dispatcher dashboard.
 *
 * The page arrives server-rendered with its whole state (also in the #dispatch-state JSON); this script draws
 * the map, keeps the lists current from the websocket's events, and sends the action forms with fetch.
 * On every (re)connection it re-syncs from /dispatch/state/, holding the events that arrive meanwhile and
 * applying them on top of the snapshot, so nothing said while the socket was down is lost.
 * No inline script, no HTML built from data: text goes through textContent (CSP- and XSS-safe).
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("dispatch-config").textContent);
  var state = JSON.parse(document.getElementById("dispatch-state").textContent);
  var csrfToken = (document.querySelector("#csrf [name=csrfmiddlewaretoken]") || {}).value || "";

  var ACTIVE = { ASSIGNED: true, ACCEPTED: true, PICKED_UP: true };
  var STATUS_LABEL = { CREATED: "Created", ASSIGNED: "Assigned", ACCEPTED: "Accepted", PICKED_UP: "Picked up" };
  var TRAIL_POINTS = 60;
  var BACKOFF_MAX_MS = 10000;
  var RESYNC_MIN_GAP_MS = 3000;

  // --- small helpers --------------------------------------------------------------------------------

  function h(tag, attrs) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") el.textContent = value;
      else if (key === "className") el.className = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  function durationText(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    var rest = minutes % 60;
    return Math.floor(minutes / 60) + " h " + (rest < 10 ? "0" : "") + rest + " min";
  }

  function minutesText(minutes) {
    if (minutes === null || minutes === undefined) return "—";
    return minutes <= 0 ? "0 min" : durationText(minutes * 60);
  }

  function secondsSince(iso) {
    if (!iso) return null;
    var at = Date.parse(iso);
    return isNaN(at) ? null : (Date.now() - at) / 1000;
  }

  function ageTime(iso) {
    return h("time", { datetime: iso || "", "data-age": true, text: durationText(secondsSince(iso)) });
  }

  function hiddenFields() {
    return [
      h("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrfToken }),
      h("input", { type: "hidden", name: "city", value: config.city }),
    ];
  }

  function actionForm(url, fields, buttonText, buttonClass) {
    var form = h("form", { method: "post", action: url, className: "js-action inline" });
    hiddenFields().concat(fields).forEach(function (f) { form.appendChild(f); });
    form.appendChild(h("button", { type: "submit", className: "btn " + (buttonClass || ""), text: buttonText }));
    return form;
  }

  function assignForm(orderId, label) {
    return actionForm("/dispatch/orders/" + orderId + "/assign/", [
      h("input", { name: "rider_id", list: "on-duty-riders", inputmode: "numeric", required: true,
                   placeholder: "rider", "aria-label": "Rider" }),
    ], label);
  }

  function cancelForm(orderId) {
    return actionForm("/dispatch/orders/" + orderId + "/cancel/", [
      h("input", { name: "reason", required: true, maxlength: 255, placeholder: "reason", "aria-label": "Why cancel" }),
    ], "Cancel", "btn-quiet");
  }

  function byId(list, key, id) {
    for (var i = 0; i < list.length; i++) if (list[i][key] === id) return list[i];
    return null;
  }

  function removeById(list, key, id) {
    for (var i = 0; i < list.length; i++) if (list[i][key] === id) { list.splice(i, 1); return true; }
    return false;
  }

  function riderIsStale(rider) {
    var age = secondsSince(rider.recorded_at);
    return age === null || age > config.stale_after_s;
  }

  // --- messages -------------------------------------------------------------------------------------

  function flash(text, ok) {
    var list = document.getElementById("messages");
    var item = h("li", { className: "message " + (ok ? "is-success" : "is-error"), text: text });
    list.appendChild(item);
    setTimeout(function () { if (item.parentNode) item.parentNode.removeChild(item); }, ok ? 6000 : 12000);
  }

  // --- the map --------------------------------------------------------------------------------------

  var map = L.map("map", { zoomControl: true, attributionControl: true })
    .setView(state.city.center, 12);
  if (config.tile_url) {
    L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution }).addTo(map);
  }
  var tripLayer = L.layerGroup().addTo(map);
  var riderLayer = L.layerGroup().addTo(map);
  var alertLayer = L.layerGroup().addTo(map);
  var riderMarkers = {};   // rider_id -> L.Marker
  var tripShapes = {};     // order_id -> {pickup, drop, trail}
  var alertMarkers = {};   // alert_id -> L.Marker
  var fitted = false;

  function riderIcon() {
    return L.divIcon({ className: "rider-icon", html: "<div class=\"rider-arrow\"></div>", iconSize: [24, 24] });
  }

  function styleRiderMarker(marker, rider) {
    var el = marker.getElement();
    if (!el) return;
    el.setAttribute("data-rider-id", rider.rider_id);
    el.setAttribute("data-lat", rider.lat);
    el.setAttribute("data-lon", rider.lon);
    el.classList.toggle("is-stale", riderIsStale(rider));
    el.classList.toggle("has-heading", rider.heading_deg !== null && rider.heading_deg !== undefined);
    var arrow = el.querySelector(".rider-arrow");
    if (arrow) arrow.style.transform = "rotate(" + (rider.heading_deg || 0) + "deg)";
  }

  function drawRider(rider) {
    if (rider.lat === null || rider.lat === undefined) return;
    var marker = riderMarkers[rider.rider_id];
    if (!marker) {
      marker = L.marker([rider.lat, rider.lon], { icon: riderIcon(), keyboard: false, title: rider.name });
      marker.bindTooltip(function () { return document.createTextNode(riderLabel(rider.rider_id)); });
      marker.addTo(riderLayer);
      riderMarkers[rider.rider_id] = marker;
    } else {
      marker.setLatLng([rider.lat, rider.lon]);
    }
    styleRiderMarker(marker, rider);
  }

  function riderLabel(riderId) {
    var rider = byId(state.riders, "rider_id", riderId);
    if (!rider) return "rider #" + riderId;
    var parts = [rider.name];
    if (rider.speed_kmh !== null && rider.speed_kmh !== undefined) parts.push(Math.round(rider.speed_kmh) + " km/h");
    if (rider.battery_pct !== null && rider.battery_pct !== undefined) parts.push("battery " + rider.battery_pct + "%");
    return parts.join(" · ");
  }

  function drawTrip(trip) {
    var shapes = tripShapes[trip.order_id];
    if (!shapes) {
      shapes = {
        pickup: L.circleMarker([trip.pickup.lat, trip.pickup.lon], { radius: 6, className: "trip-pickup" })
          .bindTooltip(function () { return document.createTextNode(trip.external_ref + " pickup: " + trip.pickup.address); }),
        drop: L.circleMarker([trip.drop.lat, trip.drop.lon], { radius: 6, className: "trip-drop" })
          .bindTooltip(function () { return document.createTextNode(trip.external_ref + " drop: " + trip.drop.address); }),
        trail: L.polyline(trip.trail || [], { className: "trip-trail", weight: 3 }),
      };
      shapes.pickup.addTo(tripLayer);
      shapes.drop.addTo(tripLayer);
      shapes.trail.addTo(tripLayer);
      tripShapes[trip.order_id] = shapes;
    } else {
      shapes.trail.setLatLngs(trip.trail || []);
    }
  }

  function drawAlert(alert) {
    if (alert.lat === null || alert.lat === undefined || alertMarkers[alert.alert_id]) return;
    var marker = L.marker([alert.lat, alert.lon], {
      icon: L.divIcon({ className: "sos-icon", html: "<div class=\"sos-pulse\">SOS</div>", iconSize: [36, 36] }),
      zIndexOffset: 1000,
    });
    marker.bindTooltip(function () { return document.createTextNode("SOS: " + alert.rider_name); });
    marker.addTo(alertLayer);
    alertMarkers[alert.alert_id] = marker;
  }

  function syncLayers() {
    var keep = {};
    state.riders.forEach(function (r) { keep[r.rider_id] = true; drawRider(r); });
    Object.keys(riderMarkers).forEach(function (id) {
      if (!keep[id]) { riderLayer.removeLayer(riderMarkers[id]); delete riderMarkers[id]; }
    });
    keep = {};
    state.trips.forEach(function (t) { keep[t.order_id] = true; drawTrip(t); });
    Object.keys(tripShapes).forEach(function (id) {
      if (!keep[id]) {
        var s = tripShapes[id];
        tripLayer.removeLayer(s.pickup); tripLayer.removeLayer(s.drop); tripLayer.removeLayer(s.trail);
        delete tripShapes[id];
      }
    });
    keep = {};
    state.alerts.forEach(function (a) { keep[a.alert_id] = true; drawAlert(a); });
    Object.keys(alertMarkers).forEach(function (id) {
      if (!keep[id]) { alertLayer.removeLayer(alertMarkers[id]); delete alertMarkers[id]; }
    });
    if (!fitted) {
      var points = state.riders.filter(function (r) { return r.lat !== null; }).map(function (r) { return [r.lat, r.lon]; });
      state.trips.forEach(function (t) { points.push([t.pickup.lat, t.pickup.lon], [t.drop.lat, t.drop.lon]); });
      if (points.length > 1) map.fitBounds(points, { padding: [30, 30], maxZoom: 15 });
      fitted = true;
    }
  }

  // --- the lists ------------------------------------------------------------------------------------

  function fill(listId, rows, emptyText) {
    var list = document.getElementById(listId);
    // Keep what a dispatcher is typing: a list is not redrawn under a focused field.
    if (list.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
      pendingRender[listId] = true;
      return;
    }
    pendingRender[listId] = false;
    list.replaceChildren.apply(list, rows.length ? rows : [h("li", { className: "row empty", text: emptyText })]);
  }
  var pendingRender = {};

  function setCount(id, n, more) {
    document.getElementById(id).textContent = n + (more ? "+" : "");
  }

  function renderAlerts() {
    var rows = state.alerts.map(function (a) {
      return h("li", { className: "row alert-row" + (a.escalated ? " is-escalated" : ""), "data-alert-id": a.alert_id },
        h("div", { className: "row-main" },
          h("strong", { className: "sos-badge", text: "SOS" }), " ",
          h("span", { className: "rider-name", text: a.rider_name }), " ",
          h("a", { className: "tel", href: "tel:" + a.rider_mobile, text: a.rider_mobile }), " ",
          a.escalated ? h("span", { className: "badge badge-escalated", text: "escalated · " + (a.city || "") }) : null),
        a.message ? h("div", { className: "row-detail", text: a.message }) : null,
        h("div", { className: "row-detail" }, "raised ", ageTime(a.raised_at), " ago",
          a.lat !== null && a.lat !== undefined ? " at " + a.lat.toFixed(5) + ", " + a.lon.toFixed(5) : ""),
        actionForm("/dispatch/alerts/" + a.alert_id + "/acknowledge/", [], "Acknowledge", "btn-ack"));
    });
    fill("alerts", rows, "No open SOS.");
    setCount("alerts-count", state.alerts.length);
    document.body.classList.toggle("has-alerts", state.alerts.length > 0);
  }

  function sortUnassigned() {
    state.unassigned.sort(function (a, b) {
      if (a.is_flagged !== b.is_flagged) return a.is_flagged ? -1 : 1;
      return (a.created_at || "").localeCompare(b.created_at || "") || a.order_id - b.order_id;
    });
  }

  function renderUnassigned() {
    sortUnassigned();
    var rows = state.unassigned.map(function (o) {
      return h("li", { className: "row order-row" + (o.is_flagged ? " is-flagged" : ""), "data-order-id": o.order_id },
        h("div", { className: "row-main" },
          h("strong", { text: o.external_ref }), " ",
          o.is_flagged ? h("span", { className: "badge badge-flagged", text: "needs a rider" }) : null, " ",
          h("span", { className: "age" }, "waiting ", ageTime(o.created_at))),
        h("div", { className: "row-detail", text: o.pickup.address + " → " + o.drop.address }),
        h("div", { className: "row-actions" }, assignForm(o.order_id, "Assign"), cancelForm(o.order_id)));
    });
    fill("unassigned", rows, "Nothing waiting.");
    setCount("unassigned-count", state.unassigned.length, state.unassigned_more);
  }

  function renderTrips() {
    var rows = state.trips.map(function (t) {
      return h("li", { className: "row trip-row", "data-order-id": t.order_id },
        h("div", { className: "row-main" },
          h("strong", { text: t.external_ref }), " ",
          h("span", { className: "status status-" + t.status.toLowerCase(), text: STATUS_LABEL[t.status] || t.status }), " ",
          h("span", { className: "rider-name", text: t.rider_name || ("rider #" + t.rider_id) }), " ",
          h("span", { className: "age" }, ageTime(t.assigned_at)), " ",
          t.track_url ? h("a", { className: "track-link", href: t.track_url, target: "_blank", rel: "noopener", text: "tracking link" }) : null),
        h("div", { className: "row-detail", text: t.pickup.address + " → " + t.drop.address }),
        t.status !== "PICKED_UP"
          ? h("div", { className: "row-actions" }, assignForm(t.order_id, "Reassign"), cancelForm(t.order_id))
          : null);
    });
    fill("trips", rows, "No trip under way.");
    setCount("trips-count", state.trips.length, state.trips_more);
  }

  function renderRiders() {
    var rows = state.riders.map(function (r) {
      return h("li", { className: "row rider-row" + (riderIsStale(r) ? " is-stale" : ""), "data-rider-id": r.rider_id },
        h("div", { className: "row-main" },
          h("strong", { className: "rider-name", text: r.name }), " ",
          h("span", { className: "rider-id", text: "#" + r.rider_id }), " ",
          h("span", { className: "badge", text: (r.active_orders || 0) + " active" }), " ",
          h("span", { className: "hos", title: "hours of service left", text: "HOS left " + minutesText(r.hos_minutes_left) })),
        h("div", { className: "row-detail" }, "last seen ", ageTime(r.recorded_at), r.recorded_at ? " ago" : "",
          r.battery_pct !== null && r.battery_pct !== undefined ? " · battery " + r.battery_pct + "%" : ""));
    });
    fill("riders", rows, "Nobody on duty.");
    setCount("riders-count", state.riders.length, state.riders_more);
    var options = state.riders.map(function (r) {
      return h("option", { value: r.rider_id, text: r.name + " · " + (r.active_orders || 0) + " active · HOS " + minutesText(r.hos_minutes_left) });
    });
    var datalist = document.getElementById("on-duty-riders");
    datalist.replaceChildren.apply(datalist, options);
  }

  function renderKpis() {
    Object.keys(state.kpis || {}).forEach(function (key) {
      var el = document.querySelector("[data-kpi='" + key + "']");
      if (el) el.textContent = state.kpis[key];
    });
  }

  function renderAll() {
    renderKpis(); renderAlerts(); renderUnassigned(); renderTrips(); renderRiders(); syncLayers();
  }

  // --- events ---------------------------------------------------------------------------------------

  var resyncTimer = null;
  var lastResyncAt = 0;

  function scheduleResync() {
    if (resyncTimer) return;
    var wait = Math.max(0, lastResyncAt + RESYNC_MIN_GAP_MS - Date.now());
    resyncTimer = setTimeout(function () { resyncTimer = null; resync(); }, wait);
  }

  function onRiderMoved(payload) {
    var points = Array.isArray(payload.riders) ? payload.riders : [payload];
    var listChanged = false;
    points.forEach(function (p) {
      var rider = byId(state.riders, "rider_id", p.rider_id);
      if (!rider) {
        // A rider who came on duty since the snapshot: drawn at once, named by the next re-sync.
        rider = { rider_id: p.rider_id, name: "rider #" + p.rider_id, active_orders: 0, hos_minutes_left: null };
        state.riders.push(rider);
        listChanged = true;
        scheduleResync();
      } else if (rider.recorded_at && p.recorded_at && Date.parse(p.recorded_at) < Date.parse(rider.recorded_at)) {
        return;  // older than what is drawn (a replayed batch, or an event applied after a newer snapshot)
      }
      ["lat", "lon", "recorded_at", "speed_kmh", "heading_deg", "battery_pct"].forEach(function (k) {
        if (p[k] !== undefined) rider[k] = p[k];
      });
      drawRider(rider);
      state.trips.forEach(function (t) {
        if (t.rider_id !== p.rider_id) return;
        t.trail = (t.trail || []).concat([[p.lat, p.lon]]).slice(-TRAIL_POINTS);
        drawTrip(t);
      });
      var row = document.querySelector("#riders [data-rider-id='" + p.rider_id + "']");
      if (row) {
        row.classList.remove("is-stale");
        var time = row.querySelector("time");
        if (time) { time.setAttribute("datetime", rider.recorded_at || ""); time.textContent = durationText(secondsSince(rider.recorded_at)); }
      }
    });
    if (listChanged) renderRiders();
  }

  function onOrderChanged(o) {
    if (o.city && config.city && o.city !== config.city) return;
    var queued = byId(state.unassigned, "order_id", o.order_id);
    var trip = byId(state.trips, "order_id", o.order_id);
    var known = queued || trip;
    if (known && known.updated_at && o.updated_at && Date.parse(o.updated_at) < Date.parse(known.updated_at)) return;
    if (o.status === "CREATED") {
      if (trip) { removeById(state.trips, "order_id", o.order_id); }
      if (queued) { queued.is_flagged = o.is_flagged; queued.updated_at = o.updated_at; }
      else if (known) {
        state.unassigned.push({ order_id: o.order_id, external_ref: o.external_ref, status: o.status, is_flagged: o.is_flagged,
          created_at: known.created_at || o.updated_at, updated_at: o.updated_at, pickup: known.pickup, drop: known.drop });
      } else { scheduleResync(); return; }
    } else if (ACTIVE[o.status]) {
      if (queued) removeById(state.unassigned, "order_id", o.order_id);
      var rider = byId(state.riders, "rider_id", o.rider_id);
      if (trip) {
        if (trip.rider_id !== o.rider_id) { trip.assigned_at = o.updated_at; trip.trail = []; }
        trip.status = o.status; trip.rider_id = o.rider_id; trip.updated_at = o.updated_at;
        trip.rider_name = rider ? rider.name : ("rider #" + o.rider_id);
      } else if (queued) {
        state.trips.push({ order_id: o.order_id, external_ref: o.external_ref, status: o.status, rider_id: o.rider_id,
          rider_name: rider ? rider.name : ("rider #" + o.rider_id), assigned_at: o.updated_at, updated_at: o.updated_at,
          pickup: queued.pickup, drop: queued.drop, trail: [], track_url: null });
        scheduleResync();  // for the tracking link, signed by the server
      } else { scheduleResync(); return; }
    } else {
      removeById(state.unassigned, "order_id", o.order_id);
      removeById(state.trips, "order_id", o.order_id);
    }
    renderUnassigned(); renderTrips(); syncLayers();
  }

  function onSosRaised(a) {
    var existing = byId(state.alerts, "alert_id", a.alert_id);
    if (existing) { existing.escalated = existing.escalated || !!a.escalated; }
    else {
      state.alerts.push({ alert_id: a.alert_id, rider_id: a.rider_id, rider_name: a.rider_name, rider_mobile: a.rider_mobile,
        city: a.city || (a.escalated ? "" : config.city), lat: a.lat, lon: a.lon, message: a.message,
        raised_at: a.raised_at, escalated: !!a.escalated });
    }
    renderAlerts(); syncLayers();
  }

  function onSosAcknowledged(a) {
    if (removeById(state.alerts, "alert_id", a.alert_id)) { renderAlerts(); syncLayers(); }
  }

  function onStats(payload) {
    state.kpis = Object.assign({}, state.kpis, payload.kpis || payload);
    renderKpis();
  }

  var handlers = {
    "rider.moved": onRiderMoved,
    "order.changed": onOrderChanged,
    "sos.raised": onSosRaised,
    "sos.acknowledged": onSosAcknowledged,
    "stats": onStats,
  };

  function apply(frame) {
    var handler = handlers[frame.event];
    if (handler) handler(frame.payload || {});
  }

  // --- the socket, its reconnection and the re-sync --------------------------------------------------

  var socket = null;
  var attempt = 0;
  var syncing = false;
  var heldFrames = [];
  var statusEl = document.getElementById("connection");

  function setConnection(text, cls) {
    statusEl.textContent = text;
    statusEl.className = "connection " + cls;
    document.body.setAttribute("data-connection", cls.replace("is-", ""));
  }

  function resync() {
    lastResyncAt = Date.now();
    syncing = true;
    return fetch(config.state_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.redirected || response.status === 403) { window.location.reload(); throw new Error("signed out"); }
        if (!response.ok) throw new Error("state " + response.status);
        return response.json();
      })
      .then(function (fresh) {
        state = fresh;
        renderAll();
        var held = heldFrames; heldFrames = [];
        held.forEach(apply);
        document.body.setAttribute("data-synced-at", state.generated_at);
      })
      .catch(function (error) { if (window.console) console.warn("re-sync failed", error); })
      .then(function () {
        syncing = false;
        heldFrames.forEach(apply); heldFrames = [];
      });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setConnection(attempt ? "reconnecting…" : "connecting…", "is-connecting");
    socket = new WebSocket(scheme + window.location.host + config.ws_path);
    socket.onopen = function () {
      attempt = 0;
      setConnection("live", "is-live");
      resync();  // whatever changed since the page (or the last socket) was read
    };
    socket.onmessage = function (message) {
      var frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      if (syncing) heldFrames.push(frame); else apply(frame);
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4401 || event.code === 4403 || event.code === 4404) {
        // Signed out, not staff, or the city is gone: retrying would not help; a reload shows why.
        setConnection(event.code === 4404 ? "city not found" : "signed out · reload", "is-offline");
        return;
      }
      attempt += 1;
      var delay = Math.min(BACKOFF_MAX_MS, 500 * Math.pow(2, attempt - 1)) * (0.75 + Math.random() * 0.5);
      setConnection("offline · retrying in " + Math.ceil(delay / 1000) + " s", "is-offline");
      setTimeout(connect, delay);
    };
  }

  // --- actions through fetch (plain forms work without this) -----------------------------------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("js-action")) return;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    })
      .then(function (response) {
        return response.json().catch(function () { return { ok: false, message: "The server answered " + response.status + "." }; });
      })
      .then(function (result) {
        flash(result.message, result.ok);
        if (result.ok) {
          var alertRow = form.closest("[data-alert-id]");
          if (alertRow) onSosAcknowledged({ alert_id: Number(alertRow.getAttribute("data-alert-id")) });
        }
      })
      .catch(function () { flash("The server could not be reached; try again.", false); })
      .then(function () { if (button) button.disabled = false; });
  });

  document.addEventListener("focusout", function () {
    setTimeout(function () {
      if (pendingRender.unassigned) renderUnassigned();
      if (pendingRender.trips) renderTrips();
      if (pendingRender.alerts) renderAlerts();
      if (pendingRender.riders) renderRiders();
    }, 0);
  });

  // --- ages and staleness tick on their own ------------------------------------------------------------

  setInterval(function () {
    document.querySelectorAll("time[data-age]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      if (iso) el.textContent = durationText(secondsSince(iso));
    });
    state.riders.forEach(function (r) {
      var stale = riderIsStale(r);
      var marker = riderMarkers[r.rider_id];
      if (marker && marker.getElement()) marker.getElement().classList.toggle("is-stale", stale);
      var row = document.querySelector("#riders [data-rider-id='" + r.rider_id + "']");
      if (row) row.classList.toggle("is-stale", stale);
    });
  }, 5000);

  renderAll();
  connect();
})();

/* FleetOps public tracking page: one trip's pickup, drop, status and the rider's live position.
 * Subscribes to ws/orders/<id>/track/?token=...; reconnects with backoff. No inline script. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("track-config").textContent);
  var trip = JSON.parse(document.getElementById("track-state").textContent);
  var STATUS_LABEL = { CREATED: "Created", ASSIGNED: "Assigned", ACCEPTED: "Accepted", PICKED_UP: "Picked up",
                       DELIVERED: "Delivered", CANCELLED: "Cancelled", FAILED: "Failed" };
  var ACTIVE = { ASSIGNED: true, ACCEPTED: true, PICKED_UP: true };

  var map = L.map("map");
  if (config.tile_url) L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution }).addTo(map);
  L.circleMarker([trip.pickup.lat, trip.pickup.lon], { radius: 7, className: "trip-pickup" }).addTo(map)
    .bindTooltip(function () { return document.createTextNode("Pickup: " + trip.pickup.address); });
  L.circleMarker([trip.drop.lat, trip.drop.lon], { radius: 7, className: "trip-drop" }).addTo(map)
    .bindTooltip(function () { return document.createTextNode("Drop: " + trip.drop.address); });
  var trail = L.polyline(trip.trail || [], { className: "trip-trail", weight: 4 }).addTo(map);
  var rider = null;
  var bounds = [[trip.pickup.lat, trip.pickup.lon], [trip.drop.lat, trip.drop.lon]];
  if (trip.position) bounds.push([trip.position.lat, trip.position.lon]);
  bounds = bounds.concat(trip.trail || []);
  map.fitBounds(bounds, { padding: [40, 40], maxZoom: 16 });

  function moveRider(p) {
    if (p.lat === null || p.lat === undefined) return;
    if (!rider) {
      rider = L.marker([p.lat, p.lon], {
        icon: L.divIcon({ className: "rider-icon", html: "<div class=\"rider-arrow\"></div>", iconSize: [24, 24] }),
      }).addTo(map);
    } else {
      rider.setLatLng([p.lat, p.lon]);
    }
    var el = rider.getElement();
    if (el) {
      el.setAttribute("data-lat", p.lat);
      el.setAttribute("data-lon", p.lon);
      el.classList.toggle("has-heading", p.heading_deg !== null && p.heading_deg !== undefined);
      var arrow = el.querySelector(".rider-arrow");
      if (arrow) arrow.style.transform = "rotate(" + (p.heading_deg || 0) + "deg)";
    }
  }

  function removeRider() {
    if (rider) { map.removeLayer(rider); rider = null; }
    trail.setLatLngs([]);
  }

  if (trip.position) moveRider(trip.position);

  function setStatus(status) {
    var el = document.getElementById("trip-status");
    el.textContent = STATUS_LABEL[status] || status;
    el.setAttribute("data-status", status);
    trip.status = status;
    if (!ACTIVE[status]) removeRider();
  }

  function onFrame(frame) {
    var payload = frame.payload || {};
    if (frame.event === "order.changed") {
      if (payload.order_id === trip.order_id) {
        if (payload.rider_id !== trip.rider_id) { trip.rider_id = payload.rider_id; removeRider(); }
        setStatus(payload.status);
      }
      return;
    }
    if (!ACTIVE[trip.status]) return;
    var points = Array.isArray(payload.riders) ? payload.riders : [payload];
    points.forEach(function (p) {
      if (p.rider_id !== undefined && trip.rider_id !== null && p.rider_id !== trip.rider_id) return;
      if (p.lat === undefined) return;
      moveRider(p);
      trail.addLatLng([p.lat, p.lon]);
    });
  }

  var attempt = 0;
  var statusEl = document.getElementById("connection");
  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + config.ws_path);
    socket.onopen = function () { attempt = 0; statusEl.textContent = "live"; statusEl.className = "connection is-live"; };
    socket.onmessage = function (message) {
      try { onFrame(JSON.parse(message.data)); } catch (e) { /* not ours */ }
    };
    socket.onclose = function (event) {
      statusEl.textContent = "offline"; statusEl.className = "connection is-offline";
      if (event.code === 4401 || event.code === 4403 || event.code === 4404) return;
      attempt += 1;
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, attempt - 1)) * (0.75 + Math.random() * 0.5));
    };
  }
  connect();
})();

// PlayGate demo player: ask the app backend for a signed URL, play it with hls.js.
// ?src=<url> plays that URL instead (to try a tampered or expired link).
"use strict";

const video = document.getElementById("video");
const statusBox = document.getElementById("status");

function show(text, isError) {
  statusBox.textContent = text;
  statusBox.className = isError ? "error" : "";
  document.body.dataset.state = isError ? "error" : text.startsWith("Playing") ? "playing" : "loading";
}

async function playbackUrl() {
  const override = new URLSearchParams(location.search).get("src");
  if (override) return override;
  const resp = await fetch("api/playback-url", { method: "POST" });
  const body = await resp.json();
  if (!resp.ok) throw new Error(`the app backend refused: ${body.error || resp.status}`);
  return body.url;
}

function deniedMessage(data) {
  const xhr = data.networkDetails;
  const status = (data.response && data.response.code) || (xhr && xhr.status) || 0;
  let reason = "";
  if (xhr && typeof xhr.getResponseHeader === "function") {
    reason = xhr.getResponseHeader("X-PlayGate-Reason") || "";
  } else if (xhr && xhr.headers && typeof xhr.headers.get === "function") {
    reason = xhr.headers.get("X-PlayGate-Reason") || "";
  }
  if (status === 401 || status === 403) {
    return `Playback denied: the link was refused (HTTP ${status}${reason ? ", " + reason : ""}).`;
  }
  return `Playback failed: ${data.details}${status ? " (HTTP " + status + ")" : ""}.`;
}

async function start() {
  let url;
  try {
    url = await playbackUrl();
  } catch (err) {
    show(`Could not get a playback URL: ${err.message}`, true);
    return;
  }
  if (!window.Hls || !Hls.isSupported()) {
    show("This browser cannot play HLS with hls.js (no Media Source Extensions).", true);
    return;
  }
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) {
      show(deniedMessage(data), true);
      hls.destroy();
    }
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    show("Loading…", false);
    video.play().catch((err) => show(`The browser would not start playback: ${err.message}`, true));
  });
  video.addEventListener("playing", () => show("Playing", false));
  hls.loadSource(url);
  hls.attachMedia(video);
}

start();

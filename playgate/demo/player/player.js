// PlayGate demo player: ask the app backend for a signed URL, play it with hls.js.
// ?src=<url> plays that URL instead (to try a tampered or expired link).
"use strict";

const video = document.getElementById("video");
const statusBox = document.getElementById("status");

// state: "loading", "playing", "paused", "ended" or "error" (tests wait on body[data-state]).
function show(text, state) {
  statusBox.textContent = text;
  statusBox.className = state === "error" ? "error" : "";
  document.body.dataset.state = state;
}

// hls.min.js did not load: ask the app backend why, instead of blaming the browser.
async function missingPlayerMessage() {
  try {
    const resp = await fetch("hls.min.js", { cache: "no-store" });
    const body = await resp.json();
    if (body.hint) return `The demo cannot play: ${body.hint}.`;
  } catch (_err) {
    // Not JSON: fall through to the generic message.
  }
  return "The demo cannot play: hls.min.js did not load (see the app backend's terminal).";
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
    show(`Could not get a playback URL: ${err.message}`, "error");
    return;
  }
  if (!window.Hls) {
    show(await missingPlayerMessage(), "error");
    return;
  }
  if (!Hls.isSupported()) {
    show("This browser cannot play HLS with hls.js (no Media Source Extensions).", "error");
    return;
  }
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) {
      show(deniedMessage(data), "error");
      hls.destroy();
    }
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    show("Loading…", "loading");
    video.play().catch((err) => show(`The browser would not start playback: ${err.message}`, "error"));
  });
  video.addEventListener("playing", () => show("Playing", "playing"));
  video.addEventListener("pause", () => {
    // A pause at the end is followed by "ended", which says more.
    if (!video.ended) show("Paused", "paused");
  });
  video.addEventListener("ended", () => show("Finished: the whole video played", "ended"));
  hls.loadSource(url);
  hls.attachMedia(video);
}

start();

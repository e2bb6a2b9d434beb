// Drives one stock player and records what a test needs on window.pg: fatal errors, the
// moment playback started, and whether the film ended. The players run with default settings.
"use strict";

const video = document.getElementById("video");
const pg = { errors: [], started: null, startTime: null, ended: false };
window.pg = pg;

video.addEventListener("playing", () => {
  if (pg.started === null) {
    pg.started = Date.now();
    pg.startTime = video.currentTime;
  }
});
video.addEventListener("ended", () => { pg.ended = true; });

// Called by the test once the page has loaded, with a URL signed just before: the start
// window counts from then, as when an app backend hands a URL to a player that is ready.
window.startPlayer = (kind, src) => {
  if (kind === "dash") {
    const player = dashjs.MediaPlayer().create();
    player.on(dashjs.MediaPlayer.events.ERROR, (e) => {
      pg.errors.push(`dash.js: ${JSON.stringify(e.error)}`);
    });
    player.initialize(video, src, true);
  } else {
    const hls = new Hls();
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) {
        const code = data.response ? data.response.code : "";
        pg.errors.push(`hls.js: ${data.details} ${code}`);
      }
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play(); });
    hls.loadSource(src);
    hls.attachMedia(video);
  }
};

// Live animated preview of the frames this pack's samplers emit (RepeatAndSlideSampler,
// FIFOQueueWithImageEmbed). The server (nodes/comfy_glue.py, Progress.frame) sends each new frame as a small
// JPEG on ComfyUI's websocket, several frames to a message at most a few times a second; this extension
// shows each new frame on its node as it arrives and loops over the frames so far, with a frame counter.
// When the run ends (a done event, or execution moving on, failing or being interrupted) the node keeps
// playing the whole result. The preview is a DOM widget that is never serialized: saved workflows and
// queued prompts are unchanged by it.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const FRAMES_EVENT = "zeroshot_video.frames";
const DONE_EVENT = "zeroshot_video.done";
const WIDGET_NAME = "zeroshot_video_preview";
const PLAYBACK_FPS = 8;
const MIN_HEIGHT = 180;
const LABEL_HEIGHT = 20;

// A node of the running prompt, by the id the server knows it by ("12", or "5:12" inside a subgraph).
function nodeById(id) {
  let graph = app.graph;
  let node = null;
  for (const part of String(id).split(":")) {
    node = graph?.getNodeById(Number(part)) ?? graph?.getNodeById(part) ?? null;
    graph = node?.subgraph;
  }
  return node;
}

class FramePreview {
  constructor(node) {
    this.node = node;
    this.promptId = null;
    this.frames = [];  // {index, src}, sorted by index
    this.position = 0;  // index into this.frames of the frame on show
    this.live = false;
    this.expected = null;  // frame count announced by the done event

    this.element = document.createElement("div");
    this.element.className = "zeroshot-video-preview";
    Object.assign(this.element.style, {
      display: "flex", flexDirection: "column", alignItems: "center", width: "100%", height: "100%",
      overflow: "hidden",
    });
    this.image = document.createElement("img");
    Object.assign(this.image.style, { flex: "1 1 auto", minHeight: "0", maxWidth: "100%", objectFit: "contain" });
    this.label = document.createElement("div");
    Object.assign(this.label.style, {
      flex: `0 0 ${LABEL_HEIGHT}px`, font: "12px monospace", color: "var(--input-text, #ddd)", textAlign: "center",
    });
    this.element.append(this.image, this.label);

    const widget = node.addDOMWidget(WIDGET_NAME, "zeroshot_video_preview", this.element,
                                     { serialize: false, hideOnZoom: false });
    widget.serialize = false;
    widget.computeLayoutSize = () => ({ minHeight: MIN_HEIGHT, minWidth: 0 });
    const size = node.computeSize();
    node.setSize([Math.max(node.size[0], size[0]), Math.max(node.size[1], size[1])]);

    this.timer = setInterval(() => this.advance(), 1000 / PLAYBACK_FPS);
  }

  // A new run replaces the previous run's frames.
  begin(promptId) {
    if (promptId === this.promptId) return;
    this.promptId = promptId;
    this.frames = [];
    this.position = 0;
    this.expected = null;
    this.live = true;
  }

  add(frames) {
    let newest = null;
    for (const { index, image } of frames) {
      const entry = { index, src: `data:image/jpeg;base64,${image}` };
      let at = this.frames.length;
      while (at > 0 && this.frames[at - 1].index > index) at--;
      if (at > 0 && this.frames[at - 1].index === index) this.frames[at - 1] = entry;
      else this.frames.splice(at, 0, entry);
      newest = entry;
    }
    if (newest) this.show(this.frames.indexOf(newest));
  }

  finish(count) {
    if (count !== undefined) this.expected = count;
    if (!this.live) return;
    this.live = false;
    this.show(0);
  }

  advance() {
    // Stop once the node has left its graph: deleted, or another workflow opened.
    if (this.node.graph?.getNodeById(this.node.id) !== this.node) clearInterval(this.timer);
    else if (this.frames.length > 1) this.show((this.position + 1) % this.frames.length);
  }

  show(position) {
    if (!this.frames.length) return;
    this.position = position;
    const frame = this.frames[position];
    if (this.image.getAttribute("src") !== frame.src) this.image.src = frame.src;
    const total = this.expected ?? this.frames.length;
    this.label.textContent = `${this.live ? "● live · " : ""}frame ${position + 1}/${total}`;
    this.element.dataset.frames = String(this.frames.length);
    this.element.dataset.live = String(this.live);
  }
}

function previewOf(node) {
  node.zeroshotPreview ??= new FramePreview(node);
  return node.zeroshotPreview;
}

// Every preview still live for a prompt: execution moved on, or the prompt ended without a done event
// (interrupted, failed), so whatever arrived is the whole result.
function finishLive(promptId, exceptNode) {
  for (const node of app.graph?.nodes ?? []) {
    const preview = node.zeroshotPreview;
    if (preview?.live && node !== exceptNode && (promptId === undefined || preview.promptId === promptId)) {
      preview.finish();
    }
  }
}

app.registerExtension({
  name: "zeroshot_video.preview",
  setup() {
    api.addEventListener(FRAMES_EVENT, ({ detail }) => {
      const node = nodeById(detail.node);
      if (!node) return;
      const preview = previewOf(node);
      preview.begin(detail.prompt_id);
      preview.add(detail.frames);
      app.graph.setDirtyCanvas(true, true);
    });
    api.addEventListener(DONE_EVENT, ({ detail }) => {
      const node = nodeById(detail.node);
      if (node?.zeroshotPreview?.promptId === detail.prompt_id) node.zeroshotPreview.finish(detail.frames);
    });
    api.addEventListener("executing", ({ detail }) => {
      finishLive(undefined, detail == null ? null : nodeById(detail));
    });
    for (const event of ["execution_success", "execution_error", "execution_interrupted"]) {
      api.addEventListener(event, ({ detail }) => finishLive(detail?.prompt_id));
    }
  },
});

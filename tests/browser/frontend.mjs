// Drives ComfyUI's real frontend in Debian's chromium (playwright-core, no browser download) for the
// browser tests and tools/thumbnails.py. One task per run:
//
//   node frontend.mjs <task> <request.json>     (prints one JSON line: the result)
//
// workflows  {url, workflows: [{name, graph}], queue, timeout_s}: load each UI workflow with the page's own
//            app.loadGraphData, report missing node types, widget values as the editor holds them and combo
//            values outside their options, convert with app.graphToPrompt; with queue, queue the prompt from
//            the page and wait for its end.
// preview    {url, graph, node, widgets, timeout_s}: load, set widgets ({name: value}) of the node (another
//            seed, so the run is not a cached one), queue, and sample the node's live preview every 100 ms
//            until the prompt ends.
// screenshot {url, workflows: [{name, graph, out}], scale, margin}: load each graph, fit the viewport to
//            it, hide the editor's menus, and save the graph as a PNG.
//
// Console errors and page errors go to stderr; the result carries what the tests assert on.
import fs from "node:fs";
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"];
// Settings for a clean, quiet editor: no first-run template dialog, no minimap or canvas statistics over
// the graph, no pack badge on every node.
const SETTINGS = {
  "Comfy.TutorialCompleted": true,
  "Comfy.Minimap.Visible": false,
  "Comfy.Graph.CanvasInfo": false,
  "Comfy.NodeBadge.NodeSourceBadgeMode": "None",
};
// The editor's chrome around the canvas (menus, side bar, zoom buttons), hidden for screenshots.
const CHROME_CSS = `#comfyui-body-top, #comfyui-body-left, #graph-canvas-container > .splitter-overlay-root,
  .p-toast { visibility: hidden !important; }`;
const LEFT_BAR = 64, TOP_BAR = 78;

async function openEditor(browser, url, viewport = { width: 1600, height: 1000 }) {
  for (const [id, value] of Object.entries(SETTINGS)) {
    await fetch(`${url}/api/settings/${encodeURIComponent(id)}`, { method: "POST", body: JSON.stringify(value) });
  }
  const page = await browser.newPage({ viewport });
  page.on("console", (m) => { if (m.type() === "error") console.error(`console: ${m.text()}`); });
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(
    () => window.app?.graph && window.app.canvas && window.comfyAPI?.api?.api
      && window.app.extensions?.some((e) => e.name === "zeroshot_video.preview"),
    null, { timeout: 120_000 });
  await page.evaluate(() => {
    const { api } = window.comfyAPI.api;
    window.__zsv = { missing: null, finished: {} };
    window.app.registerExtension({
      name: "zeroshot_video.tests",
      afterConfigureGraph(missing) { window.__zsv.missing = missing.map((m) => m.type ?? m); },
    });
    for (const type of ["execution_success", "execution_error", "execution_interrupted"]) {
      api.addEventListener(type, ({ detail }) => { window.__zsv.finished[detail.prompt_id] = { type, detail }; });
    }
  });
  return page;
}

// Load a UI graph the way the editor opens a workflow file.
async function load(page, graph) {
  await page.evaluate(async (graph) => {
    window.__zsv.missing = null;
    await window.app.loadGraphData(graph, true, true, null,
                                   { showMissingNodesDialog: false, showMissingModelsDialog: false });
  }, graph);
}

async function queue(page) {
  return await page.evaluate(async () => {
    const { api } = window.comfyAPI.api;
    const prompt = await window.app.graphToPrompt();
    try {
      const answer = await api.queuePrompt(0, prompt);
      return { output: prompt.output, prompt_id: answer.prompt_id, node_errors: answer.node_errors ?? {} };
    } catch (error) {
      return { output: prompt.output, error: String(error), node_errors: error.response?.node_errors ?? {} };
    }
  });
}

async function finished(page, promptId, timeoutS) {
  const handle = await page.waitForFunction((id) => window.__zsv.finished[id] ?? null, promptId,
                                            { timeout: timeoutS * 1000, polling: 100 });
  const { type, detail } = await handle.jsonValue();
  return { status: type, message: detail.exception_message ?? null, node_type: detail.node_type ?? null };
}

async function workflows(browser, request) {
  const page = await openEditor(browser, request.url);
  const results = [];
  for (const { name, graph } of request.workflows) {
    await load(page, graph);
    const state = await page.evaluate(() => {
      const { app } = window;
      const serialized = app.graph.serialize();
      const invalidCombos = [];
      for (const node of app.graph.nodes) {
        for (const widget of node.widgets ?? []) {
          if (widget.type !== "combo") continue;
          const values = typeof widget.options.values === "function" ? widget.options.values() : widget.options.values;
          if (!values?.includes(widget.value)) invalidCombos.push(`node ${node.id} ${widget.name} = ${widget.value}`);
        }
      }
      return {
        missing: window.__zsv.missing,
        unregistered: app.graph.nodes.filter((n) => n.has_errors || !(n.type in window.LiteGraph.registered_node_types))
          .map((n) => n.type),
        widgets: Object.fromEntries(serialized.nodes.map((n) => [n.id, n.widgets_values ?? []])),
        invalid_combos: invalidCombos,
      };
    });
    if (!request.queue) {
      results.push({ name, ...state, prompt: (await page.evaluate(() => window.app.graphToPrompt())).output });
      continue;
    }
    const queued = await queue(page);
    const run = queued.prompt_id ? await finished(page, queued.prompt_id, request.timeout_s ?? 600)
                                 : { status: "rejected", message: queued.error };
    results.push({ name, ...state, prompt: queued.output, node_errors: queued.node_errors, ...run });
  }
  return { workflows: results };
}

async function preview(browser, request) {
  const page = await openEditor(browser, request.url);
  await load(page, request.graph);
  await page.evaluate(({ node, widgets }) => {
    for (const widget of window.app.graph.getNodeById(node).widgets) {
      if (widget.name in widgets) widget.value = widgets[widget.name];
    }
  }, request);
  const queued = await queue(page);
  if (!queued.prompt_id) return { status: "rejected", message: queued.error, node_errors: queued.node_errors };
  const samples = [];
  const started = Date.now();
  const sample = () => page.evaluate(({ node, promptId }) => {
    const preview = window.app.graph.getNodeById(node).zeroshotPreview;
    const element = preview?.element;
    const box = element?.getBoundingClientRect();
    return {
      finished: !!window.__zsv.finished[promptId],
      frames: preview ? preview.frames.length : null,
      indices: preview ? preview.frames.map((f) => f.index) : [],
      live: preview?.live ?? null,
      expected: preview?.expected ?? null,
      label: preview?.label.textContent ?? null,
      shown: !!(element?.isConnected && box.width > 0 && box.height > 0 && preview.image.naturalWidth > 0),
    };
  }, { node: request.node, promptId: queued.prompt_id });
  for (;;) {
    const state = await sample();
    samples.push({ t: (Date.now() - started) / 1000, ...state });
    if (state.finished) break;
    if (Date.now() - started > (request.timeout_s ?? 600) * 1000) break;
    await page.waitForTimeout(100);
  }
  await page.waitForTimeout(500);  // the done event and late frames, if any
  const after = await sample();
  const run = await finished(page, queued.prompt_id, 1);
  return { ...run, prompt_id: queued.prompt_id, samples, after };
}

async function screenshot(browser, request) {
  const page = await openEditor(browser, request.url);
  await page.addStyleTag({ content: CHROME_CSS });
  const scale = request.scale ?? 1, margin = request.margin ?? 24;
  const shots = [];
  for (const { name, graph, out } of request.workflows) {
    await load(page, graph);
    const bounds = await page.evaluate(() => {
      const boxes = [...window.app.graph.nodes.map((n) => n.boundingRect),
                     ...window.app.graph.groups.map((g) => g.boundingRect)];
      const left = Math.min(...boxes.map((b) => b[0])), top = Math.min(...boxes.map((b) => b[1]));
      const right = Math.max(...boxes.map((b) => b[0] + b[2])), bottom = Math.max(...boxes.map((b) => b[1] + b[3]));
      return { left, top, width: right - left, height: bottom - top };
    });
    const width = Math.ceil(bounds.width * scale + 2 * margin), height = Math.ceil(bounds.height * scale + 2 * margin);
    await page.setViewportSize({ width: LEFT_BAR + width, height: TOP_BAR + height });
    await page.evaluate(({ bounds, scale, margin }) => {
      const { canvas } = window.app;
      canvas.ds.scale = scale;
      canvas.ds.offset = [margin / scale - bounds.left, margin / scale - bounds.top];
      canvas.setDirty(true, true);
      canvas.draw(true, true);
    }, { bounds, scale, margin });
    await page.waitForTimeout(400);  // DOM widgets (text areas) follow the canvas on the next frames
    await page.screenshot({ path: out, clip: { x: LEFT_BAR, y: TOP_BAR, width, height } });
    shots.push({ name, out, width, height });
  }
  return { screenshots: shots };
}

const TASKS = { workflows, preview, screenshot };
const [task, requestPath] = process.argv.slice(2);
if (!TASKS[task] || !requestPath) {
  console.error(`usage: node frontend.mjs (${Object.keys(TASKS).join("|")}) request.json`);
  process.exit(2);
}
const request = JSON.parse(fs.readFileSync(requestPath, "utf8"));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
try {
  console.log(JSON.stringify(await TASKS[task](browser, request)));
} finally {
  await browser.close();
}
